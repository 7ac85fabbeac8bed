package changes

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"socialhub/internal/catalog"
	"socialhub/internal/rawjson"
	"socialhub/internal/store"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the tables this package owns.
func Migrations() store.MigrationSet {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err)
	}
	return store.MigrationSet{Name: "changes", FS: sub}
}

// Outbox appends and reads change events.
type Outbox struct {
	pool *pgxpool.Pool
}

// NewOutbox returns the outbox.
func NewOutbox(pool *pgxpool.Pool) *Outbox { return &Outbox{pool: pool} }

// Append writes change events inside the caller's transaction, so they commit with the change.
func (o *Outbox) Append(ctx context.Context, tx pgx.Tx, chs []catalog.Change) error {
	if len(chs) == 0 {
		return nil
	}
	rows := make([][]any, len(chs))
	for i, c := range chs {
		fields := c.ChangedFields
		if fields == nil {
			fields = []string{}
		}
		var doc any
		if len(c.Doc) > 0 {
			doc = string(c.Doc)
		}
		var district any
		if d := DistrictOf(c.Doc); d != "" {
			district = d
		}
		rows[i] = []any{c.EntityType, c.EntityID, c.Op, c.Version, fields, doc, district}
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"changes_outbox"},
		[]string{"entity_type", "entity_id", "op", "version", "changed_fields", "doc", "district"}, pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("error appending %d change events: %w", len(chs), err)
	}
	return nil
}

// Entry is a stored change event.
type Entry struct {
	Seq           int64
	EntityType    string
	EntityID      string
	Op            string
	Version       int64
	ChangedFields []string
	Doc           []byte
}

// Backlog returns how many events wait to be published.
func (o *Outbox) Backlog(ctx context.Context) (int64, error) {
	var n int64
	if err := o.pool.QueryRow(ctx, `SELECT count(*) FROM changes_outbox WHERE published_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("error counting outbox backlog: %w", err)
	}
	return n, nil
}

// Count returns how many events the outbox holds in all.
func (o *Outbox) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := o.pool.QueryRow(ctx, `SELECT count(*) FROM changes_outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("error counting outbox: %w", err)
	}
	return n, nil
}

// districtDoc is what DistrictOf reads of an entity document: HSDS keeps the city's district on
// addresses, which a location carries (and a nested location, as in a service record, too).
type districtDoc struct {
	District  string        `json:"district"`
	Addresses []districtDoc `json:"addresses"`
	Location  *districtDoc  `json:"location"`
	SALs      []struct {
		Location *districtDoc `json:"location"`
	} `json:"service_at_locations"`
}

// DistrictOf returns the district an entity document belongs to, for the feed's district filter:
// its own district field, else its first address's, else its location's. Entities without an
// address of their own (organizations, canonical services) have none and match no district filter.
//
// Every change of a batch passes here, so the documents the catalog writes (plain keys, the fields
// of the expected types) are read by a scan that skips what it does not need; anything else falls
// back to encoding/json, whose answer is the reference (a test and a fuzz target hold them equal).
func DistrictOf(doc []byte) string {
	if len(doc) == 0 {
		return ""
	}
	var d districtDoc
	if end, ok := scanDistrictDoc(doc, rawjson.SkipSpace(doc, 0), &d, false); ok && rawjson.SkipSpace(doc, end) == len(doc) {
		return d.district()
	}
	return districtOfJSON(doc)
}

// districtOfJSON is DistrictOf by encoding/json alone: the reference the scan must agree with.
func districtOfJSON(doc []byte) string {
	var d districtDoc
	if json.Unmarshal(doc, &d) != nil {
		return ""
	}
	return d.district()
}

// scanDistrictDoc reads the object at b[i] into d: district, addresses and location, or with sal
// only location (a service_at_location's). ok is false for whatever the scan leaves to
// encoding/json: invalid JSON, a field of another type or null, a key spelled with escapes or in
// other case, a field given twice.
func scanDistrictDoc(b []byte, i int, d *districtDoc, sal bool) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return i, false
	}
	var seen [4]bool
	i = rawjson.SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		kend, plain, ok := rawjson.String(b, i)
		if !ok {
			return i, false
		}
		key := b[i+1 : kend-1]
		field := -1
		for f, name := range districtFields {
			if string(key) == name {
				field = f
			} else if !plain || bytes.EqualFold(key, []byte(name)) {
				return i, false // encoding/json matches keys case-insensitively and unescaped
			}
		}
		if sal && field != fieldLocation {
			field = -1 // a service_at_location's own fields are not read
		}
		i = rawjson.SkipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		i = rawjson.SkipSpace(b, i+1)
		if field >= 0 {
			if seen[field] {
				return i, false
			}
			seen[field] = true
		}
		switch field {
		case fieldDistrict:
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			end, plain, ok := rawjson.String(b, i)
			if !ok {
				return i, false
			}
			if plain {
				d.District = string(b[i+1 : end-1])
			} else {
				d.District = rawjson.Unquote(b[i:end])
			}
			i = end
		case fieldAddresses, fieldSALs:
			if i >= len(b) || b[i] != '[' {
				return i, false
			}
			i = rawjson.SkipSpace(b, i+1)
			for n := 0; i < len(b) && b[i] != ']'; n++ {
				if n > 0 {
					if b[i] != ',' {
						return i, false
					}
					i = rawjson.SkipSpace(b, i+1)
				}
				var e districtDoc
				if i, ok = scanDistrictDoc(b, i, &e, field == fieldSALs); !ok {
					return i, false
				}
				if field == fieldSALs {
					d.SALs = append(d.SALs, struct {
						Location *districtDoc `json:"location"`
					}{e.Location})
				} else {
					d.Addresses = append(d.Addresses, e)
				}
				i = rawjson.SkipSpace(b, i)
			}
			if i >= len(b) {
				return i, false
			}
			i++
		case fieldLocation:
			d.Location = &districtDoc{}
			if i, ok = scanDistrictDoc(b, i, d.Location, false); !ok {
				return i, false
			}
		default:
			if i, ok = rawjson.Skip(b, i); !ok {
				return i, false
			}
		}
		i = rawjson.SkipSpace(b, i)
		if i >= len(b) {
			return i, false
		}
		if b[i] == '}' {
			return i + 1, true
		}
		if b[i] != ',' {
			return i, false
		}
		i = rawjson.SkipSpace(b, i+1)
	}
}

// The fields DistrictOf reads, as scanDistrictDoc numbers them.
const (
	fieldDistrict = iota
	fieldAddresses
	fieldLocation
	fieldSALs
)

var districtFields = [...]string{fieldDistrict: "district", fieldAddresses: "addresses", fieldLocation: "location", fieldSALs: "service_at_locations"}

func (d *districtDoc) district() string {
	if d.District != "" {
		return d.District
	}
	for i := range d.Addresses {
		if v := d.Addresses[i].district(); v != "" {
			return v
		}
	}
	if d.Location != nil {
		if v := d.Location.district(); v != "" {
			return v
		}
	}
	for _, s := range d.SALs {
		if s.Location != nil {
			if v := s.Location.district(); v != "" {
				return v
			}
		}
	}
	return ""
}
