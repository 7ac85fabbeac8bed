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
	"sync"
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

// ChainHash is the hash of a row: hex sha256 of "<prev hash>\n<seq>\n<body>". Append computes it
// as it writes the row; Verify recomputes it.
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
//
// Appends are committed in groups: every lookup's row must be durable before its answer leaves,
// and one commit per row, each holding the chain's head locked until its WAL is flushed, capped
// lookups at about a thousand a second whatever the machine. An Append queues its row; if no
// group is being written, it writes the queued rows itself, in one transaction (head locked,
// rows inserted, head moved on), and if rows queued meanwhile, it hands the next group to a new
// goroutine and returns. Rows get their sequence numbers in the order they were queued, which
// is also the order of their times.
type Log struct {
	pool *pgxpool.Pool
	now  func() time.Time

	mu       sync.Mutex
	queue    []*pendingAppend
	flushing bool // a group is being written: Append only queues
}

// pendingAppend is a queued row and where its writer says how it went.
type pendingAppend struct {
	e    Entry
	body []byte
	done chan error
}

// maxGroup bounds the rows of one transaction.
const maxGroup = 1000

// flushTimeout bounds the writing of one group; the Appends waiting for it share it, so it does
// not end with the context of the one that happens to write it.
const flushTimeout = 30 * time.Second

// New returns the log on pool.
func New(pool *pgxpool.Pool) *Log { return &Log{pool: pool, now: time.Now} }

// Append appends e and returns it as stored, with its sequence number, time and hashes. The
// time is set here (to the microsecond PostgreSQL keeps); an empty Detail is stored as {}. When
// ctx ends first, Append returns its error, and the row may still be written.
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
	// Stored as the body holds it (compacted, HTML characters escaped), so Verify rebuilds the
	// same bytes.
	d, err := json.Marshal(e.Detail)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrInvalidEntry, err)
	}
	e.Detail = d
	p := &pendingAppend{done: make(chan error, 1)}
	l.mu.Lock()
	// Timed under the lock, so that times follow the sequence numbers.
	e.At = l.now().UTC().Truncate(time.Microsecond)
	b, err := e.body()
	if err != nil {
		l.mu.Unlock()
		return Entry{}, fmt.Errorf("%w: %w", ErrInvalidEntry, err)
	}
	p.e, p.body = e, b
	l.queue = append(l.queue, p)
	lead := !l.flushing
	l.flushing = true
	l.mu.Unlock()
	if lead {
		l.flushGroup()
	}
	select {
	case err := <-p.done:
		if err != nil {
			return Entry{}, err
		}
		return p.e, nil
	case <-ctx.Done():
		return Entry{}, fmt.Errorf("error appending to the audit log: %w", ctx.Err())
	}
}

// flushGroup writes the queued rows (at most maxGroup) and tells their Appends; rows queued
// meanwhile go in the next group, written by a new goroutine so that this Append returns now.
func (l *Log) flushGroup() {
	l.mu.Lock()
	n := min(len(l.queue), maxGroup)
	group := l.queue[:n:n]
	l.queue = l.queue[n:]
	l.mu.Unlock()
	err := l.write(group)
	for _, p := range group {
		p.done <- err
	}
	l.mu.Lock()
	more := len(l.queue) > 0
	l.flushing = more
	l.mu.Unlock()
	if more {
		go l.flushGroup()
	}
}

// write appends group to the chain in one transaction.
func (l *Log) write(group []*pendingAppend) error {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		var seq int64
		var hash string
		if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id FOR UPDATE`).Scan(&seq, &hash); err != nil {
			return err
		}
		for _, p := range group {
			seq++
			e := &p.e
			e.Seq, e.PrevHash, e.Hash = seq, hash, ChainHash(hash, seq, p.body)
			hash = e.Hash
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_log"}, []string{"seq", "at", "client_id", "client_name",
			"client_kind", "action", "outcome", "status", "subject", "purpose", "case_id", "detail", "prev_hash", "hash"},
			pgx.CopyFromSlice(len(group), func(i int) ([]any, error) {
				e := &group[i].e
				return []any{e.Seq, e.At, e.ClientID, e.ClientName, e.ClientKind, e.Action, e.Outcome, e.Status,
					e.Subject, e.Purpose, e.CaseID, string(e.Detail), e.PrevHash, e.Hash}, nil
			}))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id`, seq, hash)
		return err
	})
	if err != nil {
		return fmt.Errorf("error appending to the audit log: %w", err)
	}
	return nil
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
