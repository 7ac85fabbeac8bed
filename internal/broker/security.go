package broker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SASL mechanisms the hub speaks (kafka-go's).
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// TLSOptions describe how to reach brokers over TLS.
type TLSOptions struct {
	// CAFile is a PEM bundle of the brokers' CA; empty uses the system roots.
	CAFile string
	// CertFile and KeyFile are the client's certificate for mutual TLS (both or neither).
	CertFile, KeyFile string
	// ServerName overrides the name checked in the brokers' certificates.
	ServerName string
	// InsecureSkipVerify turns off certificate checks (test clusters only).
	InsecureSkipVerify bool
}

// NewTLS builds a TLS configuration.
func NewTLS(o TLSOptions) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName, InsecureSkipVerify: o.InsecureSkipVerify} //nolint:gosec // opt-in for test clusters
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("error reading kafka.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_file %s holds no PEM certificate", o.CAFile)
		}
		c.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, fmt.Errorf("kafka.tls.cert_file and kafka.tls.key_file go together")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("error reading the client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// NewSASL builds a SASL mechanism; mechanism "" means none.
func NewSASL(mechanism, user, password string) (sasl.Mechanism, error) {
	switch strings.ToLower(mechanism) {
	case "":
		return nil, nil
	case SASLPlain:
		return plain.Mechanism{Username: user, Password: password}, nil
	case SASLScramSHA256:
		return scram.Mechanism(scram.SHA256, user, password)
	case SASLScramSHA512:
		return scram.Mechanism(scram.SHA512, user, password)
	default:
		return nil, fmt.Errorf("kafka.sasl.mechanism must be %s, %s or %s, got %q", SASLPlain, SASLScramSHA256, SASLScramSHA512, mechanism)
	}
}
