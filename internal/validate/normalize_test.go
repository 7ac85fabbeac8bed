package validate_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/demo"
	"socialhub/internal/event"
	"socialhub/internal/metrics"
	"socialhub/internal/validate"
	"socialhub/schemas"
)

// messyDoc is a service as a department's list writes it: two phones in one field with an
// extension, hours with a lunch break, a district with «р-н» and е for ё, the okrug spelled out.
func messyDoc(id string) map[string]any {
	d := serviceDoc(id)
	d["email"] = "  Priem@TCSO-Marino.MOS.RU "
	d["url"] = "www.tcso-marino.mos.ru/"
	d["phones"] = []any{map[string]any{"id": id + "/phone/0", "number": "8 (495) 123-45-67 доб. 123, 8-800-200-01-22"}}
	d["schedules"] = []any{
		map[string]any{"id": id + "/schedule/0", "description": "Пн.-Пт.: 09.00-18.00, обед 13:00–14:00; вых. — сб, вс"},
		map[string]any{"id": id + "/schedule/1", "description": "по предварительной записи"},
	}
	loc := d["service_at_locations"].([]any)[0].(map[string]any)["location"].(map[string]any)
	loc["addresses"] = []any{map[string]any{
		"id": id + "/addr", "address_1": "ул. Братиславская, д. 14", "city": "Москва", "country": "RU",
		"address_type": "physical", "district": "р-н  Марьино", "okrug": "Юго-Восточный административный округ",
	}}
	return d
}

func TestProcessNormalizesMessyRecord(t *testing.T) {
	t.Parallel()
	topics := event.NewTopics(event.DefaultPrefix)
	m := metrics.New()
	s := validate.New(validate.Options{Topics: topics, Validator: newValidator(t), Metrics: m})
	msg := rawMessage(t, topics, rawEvent(t, "DSZN-7", schemas.EntityService, event.OpUpsert, mustJSON(t, messyDoc("DSZN-7"))))

	out, err := s.Process(msg)
	require.NoError(t, err)
	require.Equal(t, topics.Valid, out.Topic, "dlq: %s", out.Value)
	var ev event.Event
	require.NoError(t, event.Unmarshal(out.Value, &ev))
	var got map[string]any
	require.NoError(t, json.Unmarshal(ev.Data, &got))

	require.Equal(t, "Priem@tcso-marino.mos.ru", got["email"])
	require.Equal(t, "http://www.tcso-marino.mos.ru", got["url"])
	require.Equal(t, []any{
		map[string]any{"id": "DSZN-7/phone/0", "number": "+74951234567", "extension": 123.0},
		map[string]any{"id": "DSZN-7/phone/0/1", "number": "+78002000122"},
	}, got["phones"])
	const hours = "Пн.-Пт.: 09.00-18.00, обед 13:00–14:00; вых. — сб, вс"
	require.Equal(t, []any{
		map[string]any{"id": "DSZN-7/schedule/0", "description": hours, "freq": "WEEKLY", "byday": "MO,TU,WE,TH,FR", "opens_at": "09:00", "closes_at": "13:00", "timezone": 3.0},
		map[string]any{"id": "DSZN-7/schedule/0/1", "description": hours, "freq": "WEEKLY", "byday": "MO,TU,WE,TH,FR", "opens_at": "14:00", "closes_at": "18:00", "timezone": 3.0},
		map[string]any{"id": "DSZN-7/schedule/1", "description": "по предварительной записи"},
	}, got["schedules"], "unreadable hours stay as their description")
	addr := got["service_at_locations"].([]any)[0].(map[string]any)["location"].(map[string]any)["addresses"].([]any)[0].(map[string]any)
	require.Equal(t, "Марьино", addr["district"])
	require.Equal(t, "ЮВАО", addr["okrug"])
	require.Equal(t, "ГБУ ТЦСО «Марьино»", got["organization"].(map[string]any)["name"])

	want, err := event.ContentHash(ev.Data)
	require.NoError(t, err)
	require.Equal(t, want, ev.ContentHash, "the hash is the normalized document's")

	for field, n := range map[string]float64{"phone": 2, "email": 1, "website": 1, "schedule": 1, "schedule_unparsed": 1, "district": 1, "okrug": 1, "name": 1} {
		require.Equal(t, n, counter(t, m.NormalizedFields.WithLabelValues(source, field)), field)
	}

	// Normalizing is idempotent: the normalized document, sent again, comes out byte for byte.
	again, err := s.Process(rawMessage(t, topics, rawEvent(t, "DSZN-7", schemas.EntityService, event.OpUpsert, ev.Data)))
	require.NoError(t, err)
	var ev2 event.Event
	require.NoError(t, event.Unmarshal(again.Value, &ev2))
	require.Equal(t, string(ev.Data), string(ev2.Data))
	require.Equal(t, ev.ContentHash, ev2.ContentHash)
	require.Equal(t, 2.0, counter(t, m.NormalizedFields.WithLabelValues(source, "phone")), "nothing was left to normalize")
}

// A value that cannot be normalized sends the record to dlq with every reason, by field path.
func TestProcessUnnormalizableValues(t *testing.T) {
	t.Parallel()
	topics := event.NewTopics(event.DefaultPrefix)
	s := validate.New(validate.Options{Topics: topics, Validator: newValidator(t)})
	d := messyDoc("DSZN-8")
	d["phones"] = []any{
		map[string]any{"id": "p0", "number": "+7 (495) 123-45-67"},
		map[string]any{"id": "p1", "number": "звонить в приёмную"},
	}
	d["organization"].(map[string]any)["website"] = "priem@mos.ru"
	loc := d["service_at_locations"].([]any)[0].(map[string]any)["location"].(map[string]any)
	loc["addresses"].([]any)[0].(map[string]any)["district"] = "Марьинский"
	loc["addresses"].([]any)[0].(map[string]any)["okrug"] = "ЮАО"
	msg := rawMessage(t, topics, rawEvent(t, "DSZN-8", schemas.EntityService, event.OpUpsert, mustJSON(t, d)))

	out, err := s.Process(msg)
	require.NoError(t, err)
	require.Equal(t, topics.DLQ, out.Topic)
	_, dl := decodeDeadLetter(t, out)
	require.Equal(t, []string{
		"organization.website", "phones.1.number", "service_at_locations.0.location.addresses.0.district",
	}, fields(dl.Reasons), "reasons: %+v", dl.Reasons)
	require.Contains(t, dl.Reasons[0].Message, "is an e-mail address")
	require.Contains(t, dl.Reasons[1].Message, "звонить в приёмную")
	require.JSONEq(t, string(msg.Value), string(dl.Original), "the original travels whole")

	// A district in another okrug than the one written: one of them is wrong.
	d = messyDoc("DSZN-9")
	loc = d["service_at_locations"].([]any)[0].(map[string]any)["location"].(map[string]any)
	loc["addresses"].([]any)[0].(map[string]any)["okrug"] = "ЮАО"
	out, err = s.Process(rawMessage(t, topics, rawEvent(t, "DSZN-9", schemas.EntityService, event.OpUpsert, mustJSON(t, d))))
	require.NoError(t, err)
	_, dl = decodeDeadLetter(t, out)
	require.Equal(t, []string{"service_at_locations.0.location.addresses.0.okrug"}, fields(dl.Reasons))
	require.Contains(t, dl.Reasons[0].Message, "Марьино is in ЮВАО, not ЮАО")
}

// demoMessages builds raw messages from the demo department list the way the csv connector maps it.
func demoMessages(tb testing.TB, topics event.Topics, rows int) []kafka.Message {
	tb.Helper()
	var buf bytes.Buffer
	man, err := demo.WriteDepartmentCSV(&buf, demo.Options{Rows: rows, Broken: -1})
	require.NoError(tb, err)
	require.Len(tb, man.Valid, rows)
	recs := demoRecords(tb, buf.Bytes())
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		msgs[i] = rawMessage(tb, topics, rawEvent(tb, r.id, schemas.EntityService, event.OpUpsert, r.data))
	}
	return msgs
}

// Every record the demo generator writes still validates, normalized.
func TestProcessDemoRecords(t *testing.T) {
	t.Parallel()
	topics := event.NewTopics(event.DefaultPrefix)
	m := metrics.New()
	s := validate.New(validate.Options{Topics: topics, Validator: newValidator(t), Metrics: m})
	for _, msg := range demoMessages(t, topics, 300) {
		out, err := s.Process(msg)
		require.NoError(t, err)
		require.Equal(t, topics.Valid, out.Topic, "dlq: %s", out.Value)
	}
	require.Equal(t, 300.0, counter(t, m.NormalizedFields.WithLabelValues(source, "phone")))
	require.Positive(t, counter(t, m.NormalizedFields.WithLabelValues(source, "schedule")))
}

// BenchmarkProcess measures the stage on demo-like service records (envelope, normalization,
// schema check, content hash, output envelope) and on resident records, most of what the stage
// sees.
func BenchmarkProcess(b *testing.B) {
	topics := event.NewTopics(event.DefaultPrefix)
	s := validate.New(validate.Options{Topics: topics, Validator: newValidator(b), Metrics: metrics.New(), Now: func() time.Time { return fixedNow }})
	for name, msgs := range map[string][]kafka.Message{"service": demoMessages(b, topics, 500), "resident": residentMessages(b, topics, 500)} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				out, err := s.Process(msgs[n%len(msgs)])
				if err != nil || out.Topic != topics.Valid {
					b.Fatal(fmt.Sprint("unexpected ", out.Topic, err, string(out.Value)))
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

type demoRecord struct {
	id   string
	data []byte
}

// demoRecords maps the demo CSV to record documents the way connectors/csv does (document.go).
func demoRecords(tb testing.TB, file []byte) []demoRecord {
	tb.Helper()
	r := csv.NewReader(bytes.NewReader(file))
	r.Comma = ';'
	rows, err := r.ReadAll()
	require.NoError(tb, err)
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	out := make([]demoRecord, 0, len(rows)-1)
	for _, row := range rows[1:] {
		get := func(name string) string {
			i, ok := col[name]
			require.True(tb, ok, "column %s", name)
			return row[i]
		}
		id, orgID := get("Код"), get("Код учреждения")
		lat, err := strconv.ParseFloat(get("Широта"), 64)
		require.NoError(tb, err)
		lon, err := strconv.ParseFloat(get("Долгота"), 64)
		require.NoError(tb, err)
		locID := orgID + "/loc/" + get("Адрес")
		doc := map[string]any{
			"id": id, "name": get("Услуга"), "description": get("Описание"), "url": get("Сайт"), "email": get("Email"),
			"status":       "active",
			"organization": map[string]any{"id": orgID, "name": get("Учреждение"), "website": get("Сайт")},
			"phones":       []any{map[string]any{"id": id + "/phone/0", "number": get("Телефон")}},
			"schedules":    []any{map[string]any{"id": id + "/schedule/0", "description": get("Часы работы")}},
			"attributes":   []any{map[string]any{"id": id + "/attr/0", "taxonomy_term_id": get("Категория")}},
			"service_at_locations": []any{map[string]any{"id": id + "/sal/0", "location": map[string]any{
				"id": locID, "location_type": "physical", "name": get("Точка обслуживания"), "latitude": lat, "longitude": lon,
				"addresses": []any{map[string]any{
					"id": locID + "/addr", "address_1": get("Адрес"), "city": "Москва", "state_province": "Москва",
					"postal_code": get("Индекс"), "country": "RU", "address_type": "physical",
					"district": get("Район"), "okrug": get("Округ"),
				}},
			}}},
		}
		out = append(out, demoRecord{id: id, data: mustJSON(tb, doc)})
	}
	return out
}

// BenchmarkValidate measures the full check of one record document, as Checker.Check runs it for
// the stage and POST /v1/validate — decode, normalize, schema check of the claimed version,
// upgrade (version 1 claims), canonical encoding and content hash — on demo department records,
// and on resident records (no normalization, the canonical form read from the bytes).
func BenchmarkValidate(b *testing.B) {
	c := validate.NewChecker(newValidator(b))
	topics := event.NewTopics(event.DefaultPrefix)
	services, residents := messageData(b, demoMessages(b, topics, 500)), messageData(b, residentMessages(b, topics, 500))
	for _, version := range []int{schemas.CurrentVersion, 1} {
		b.Run("v"+strconv.Itoa(version), func(b *testing.B) {
			benchmarkCheck(b, c, schemas.EntityService, schemas.SchemaIDVersion(schemas.EntityService, version), services)
		})
	}
	b.Run("resident", func(b *testing.B) {
		benchmarkCheck(b, c, schemas.EntityResident, schemas.SchemaID(schemas.EntityResident), residents)
	})
}

// messageData returns the data of raw records.
func messageData(tb testing.TB, msgs []kafka.Message) [][]byte {
	tb.Helper()
	docs := make([][]byte, len(msgs))
	for i, m := range msgs {
		var ev event.Event
		require.NoError(tb, event.Unmarshal(m.Value, &ev))
		docs[i] = ev.Data
	}
	return docs
}

func benchmarkCheck(b *testing.B, c *validate.Checker, entity, claim string, docs [][]byte) {
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		res := c.Check(entity, claim, docs[n%len(docs)])
		if len(res.Reasons) > 0 {
			b.Fatal(res.Reasons)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
