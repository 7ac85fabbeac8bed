package audit

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"socialhub/internal/store"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the tables this package owns.
func Migrations() store.MigrationSet {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err) // the directory is embedded: this cannot fail
	}
	return store.MigrationSet{Name: "audit", FS: sub}
}

// Actions: what was asked.
const (
	ActionLookup           = "lookup"            // POST /v1/lookups
	ActionEligibleServices = "eligible_services" // GET /v1/residents/{pseudonym}/eligible-services
	ActionAccessLog        = "access_log"        // GET /v1/residents/{pseudonym}/access-log
	ActionRequest          = "request"           // any other guarded request, refused before its handler
)

// Outcomes: what the hub did about it.
const (
	OutcomeAnswered = "answered"
	OutcomeRefused  = "refused"
)

// GenesisHash is the previous hash of the first row.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Entry is a row of the audit log. Subject is a pseudonym, never a national id.
type Entry struct {
	Seq        int64           `json:"seq"`
	At         time.Time       `json:"at"`
	ClientID   string          `json:"client_id"`
	ClientName string          `json:"client_name"`
	ClientKind string          `json:"client_kind"`
	Action     string          `json:"action"`
	Outcome    string          `json:"outcome"`
	Status     int             `json:"status"`
	Subject    string          `json:"subject,omitempty"`
	Purpose    string          `json:"purpose,omitempty"`
	CaseID     string          `json:"case_id,omitempty"`
	Detail     json.RawMessage `json:"detail"`
	PrevHash   string          `json:"prev_hash"`
	Hash       string          `json:"hash"`
}

// body is what a row's hash covers besides its sequence number and the previous hash. Its field
// order is fixed by the struct, so the same row always serializes to the same bytes.
type body struct {
	At         string          `json:"at"`
	ClientID   string          `json:"client_id"`
	ClientName string          `json:"client_name"`
	ClientKind string          `json:"client_kind"`
	Action     string          `json:"action"`
	Outcome    string          `json:"outcome"`
	Status     int             `json:"status"`
	Subject    string          `json:"subject"`
	Purpose    string          `json:"purpose"`
	CaseID     string          `json:"case_id"`
	Detail     json.RawMessage `json:"detail"`
}

func (e *Entry) body() ([]byte, error) {
	return json.Marshal(body{
		At: e.At.UTC().Format(time.RFC3339Nano), ClientID: e.ClientID, ClientName: e.ClientName,
		ClientKind: e.ClientKind, Action: e.Action, Outcome: e.Outcome, Status: e.Status,
		Subject: e.Subject, Purpose: e.Purpose, CaseID: e.CaseID, Detail: e.Detail,
	})
}

// ChainHash is the hash of a row: hex sha256 of "<prev hash>\n<seq>\n<body>". PostgreSQL computes
// the same in Append (see appendSQL); Verify recomputes it here.
func ChainHash(prevHash string, seq int64, body []byte) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write([]byte{'\n'})
	h.Write([]byte(strconv.FormatInt(seq, 10)))
	h.Write([]byte{'\n'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Log appends to and reads the audit log.
type Log struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// New returns the log on pool.
func New(pool *pgxpool.Pool) *Log { return &Log{pool: pool, now: time.Now} }

// appendSQL appends a row in one statement, so the head row stays locked only for that statement
// and its commit: the CTE locks the head (a concurrent append waits, then reads the head it left),
// moves it on, and inserts the row with the previous and the new hash.
const appendSQL = `
WITH old AS (SELECT seq, hash FROM audit_head WHERE id FOR UPDATE),
new AS (
	UPDATE audit_head h SET seq = old.seq + 1,
		hash = encode(sha256(convert_to(old.hash || E'\n' || (old.seq + 1)::text || E'\n' || $1::text, 'UTF8')), 'hex')
	FROM old WHERE h.id
	RETURNING h.seq, h.hash, old.hash AS prev_hash)
INSERT INTO audit_log (seq, at, client_id, client_name, client_kind, action, outcome, status, subject,
	purpose, case_id, detail, prev_hash, hash)
SELECT new.seq, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::json, new.prev_hash, new.hash FROM new
RETURNING seq, prev_hash, hash`

// Append appends e and returns it as stored, with its sequence number, time and hashes. The
// time is set here (to the microsecond PostgreSQL keeps); an empty Detail is stored as {}.
func (l *Log) Append(ctx context.Context, e Entry) (Entry, error) {
	if e.Action == "" || e.Outcome == "" {
		return Entry{}, fmt.Errorf("%w: action and outcome are required", ErrInvalidEntry)
	}
	if len(e.Detail) == 0 {
		e.Detail = json.RawMessage(`{}`)
	}
	if !json.Valid(e.Detail) {
		return Entry{}, fmt.Errorf("%w: detail is not JSON", ErrInvalidEntry)
	}
	e.At = l.now().UTC().Truncate(time.Microsecond)
	b, err := e.body()
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrInvalidEntry, err)
	}
	// The stored detail is the compacted text the body holds, so Verify rebuilds the same bytes.
	var stored body
	if err := json.Unmarshal(b, &stored); err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrInvalidEntry, err)
	}
	e.Detail = stored.Detail
	err = l.pool.QueryRow(ctx, appendSQL, string(b), e.At, e.ClientID, e.ClientName, e.ClientKind, e.Action,
		e.Outcome, e.Status, e.Subject, e.Purpose, e.CaseID, string(e.Detail)).Scan(&e.Seq, &e.PrevHash, &e.Hash)
	if err != nil {
		return Entry{}, fmt.Errorf("error appending to the audit log: %w", err)
	}
	return e, nil
}

const entryColumns = `seq, at, client_id, client_name, client_kind, action, outcome, status, subject, purpose,
	case_id, detail::text, prev_hash, hash`

func scanEntry(row pgx.Row) (Entry, error) {
	var e Entry
	var detail string
	err := row.Scan(&e.Seq, &e.At, &e.ClientID, &e.ClientName, &e.ClientKind, &e.Action, &e.Outcome, &e.Status,
		&e.Subject, &e.Purpose, &e.CaseID, &detail, &e.PrevHash, &e.Hash)
	e.At = e.At.UTC()
	e.Detail = json.RawMessage(detail)
	return e, err
}

// Get returns the row with sequence number seq.
func (l *Log) Get(ctx context.Context, seq int64) (Entry, error) {
	e, err := scanEntry(l.pool.QueryRow(ctx, `SELECT `+entryColumns+` FROM audit_log WHERE seq = $1`, seq))
	if err != nil {
		return Entry{}, fmt.Errorf("error reading audit row %d: %w", seq, err)
	}
	return e, nil
}

// ForSubject returns the rows about a resident, newest first: at most limit of them, with a
// sequence number below before (0 means from the newest).
func (l *Log) ForSubject(ctx context.Context, pseudonym string, before int64, limit int) ([]Entry, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := l.pool.Query(ctx, `SELECT `+entryColumns+` FROM audit_log
		WHERE subject = $1 AND subject <> '' AND seq < $2 ORDER BY seq DESC LIMIT $3`, pseudonym, before, limit)
	if err != nil {
		return nil, fmt.Errorf("error reading the access log of %s: %w", pseudonym, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) { return scanEntry(r) })
	if err != nil {
		return nil, fmt.Errorf("error reading the access log of %s: %w", pseudonym, err)
	}
	return out, nil
}

// Head is the chain's last row as Verify found it.
type Head struct {
	Rows int64  // rows checked
	Seq  int64  // the last sequence number
	Hash string // the last hash: an operator who keeps it elsewhere can later prove the past unchanged
}

// Verify reads the whole chain in order and checks every row: sequence numbers without gaps, each
// row's prev_hash equal to the hash before it, each hash recomputed from the row, and the head row
// equal to the last row (which catches rows cut off the end). A broken chain is a *BrokenError
// naming the first broken row.
func (l *Log) Verify(ctx context.Context) (Head, error) {
	tx, err := l.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Head{}, fmt.Errorf("error starting to verify the audit log: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	rows, err := tx.Query(ctx, `SELECT `+entryColumns+` FROM audit_log ORDER BY seq`)
	if err != nil {
		return Head{}, fmt.Errorf("error reading the audit log: %w", err)
	}
	defer rows.Close()
	head := Head{Hash: GenesisHash}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return head, fmt.Errorf("error reading the audit log: %w", err)
		}
		if err := checkRow(&e, head); err != nil {
			return head, err
		}
		head = Head{Rows: head.Rows + 1, Seq: e.Seq, Hash: e.Hash}
	}
	if err := rows.Err(); err != nil {
		return head, fmt.Errorf("error reading the audit log: %w", err)
	}
	var seq int64
	var hash string
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id`).Scan(&seq, &hash); err != nil {
		return head, fmt.Errorf("error reading the audit head: %w", err)
	}
	if seq != head.Seq || hash != head.Hash {
		return head, &BrokenError{Seq: head.Seq + 1, Reason: fmt.Sprintf(
			"the head says the chain ends at row %d with hash %s, the table ends at row %d with hash %s (rows removed from the end?)",
			seq, hash, head.Seq, head.Hash)}
	}
	return head, nil
}

func checkRow(e *Entry, prev Head) error {
	if e.Seq != prev.Seq+1 {
		return &BrokenError{Seq: prev.Seq + 1, Reason: fmt.Sprintf("missing: the next row is %d", e.Seq)}
	}
	if e.PrevHash != prev.Hash {
		return &BrokenError{Seq: e.Seq, Reason: "prev_hash does not match the hash of the row before"}
	}
	b, err := e.body()
	if err != nil {
		return &BrokenError{Seq: e.Seq, Reason: "the row cannot be serialized: " + err.Error()}
	}
	if ChainHash(e.PrevHash, e.Seq, b) != e.Hash {
		return &BrokenError{Seq: e.Seq, Reason: "the row's content does not match its hash"}
	}
	return nil
}

// IsBroken reports whether err is a broken chain and returns the details.
func IsBroken(err error) (*BrokenError, bool) {
	var be *BrokenError
	ok := errors.As(err, &be)
	return be, ok
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
