package main
import (
 _ "github.com/twmb/franz-go/pkg/kfake"
 _ "github.com/twmb/franz-go/pkg/kgo"
 _ "github.com/segmentio/kafka-go"
 _ "github.com/jackc/pgx/v5/pgxpool"
 _ "github.com/xeipuuv/gojsonschema"
 _ "github.com/robfig/cron/v3"
 _ "go.yaml.in/yaml/v3"
 _ "github.com/prometheus/client_golang/prometheus/promhttp"
 _ "golang.org/x/text/encoding/charmap"
 _ "github.com/stretchr/testify/require"
 _ "github.com/google/uuid"
)
func main(){}
