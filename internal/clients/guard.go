package clients

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"socialhub/internal/audit"
)

// Auditor appends to the audit log (*audit.Log).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Entry, error)
}

// PurposeHeader declares the purpose of a request; the query parameter "purpose" does too.
const PurposeHeader = "X-Purpose"

// Guard authenticates requests, limits their rate per client and checks scopes and purposes.
// Every refusal but a rate limit is written to the audit log: a 429 is not, because a client
// flooding the hub would otherwise flood the log and its lock (it is logged and counted instead).
type Guard struct {
	store    *Store
	audit    Auditor
	log      *slog.Logger
	limiters sync.Map // client id → *limiter
}

type limiter struct {
	rate  float64
	burst int
	lim   *rate.Limiter
}

// NewGuard returns a guard authenticating against store and auditing to aud.
func NewGuard(store *Store, aud Auditor, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Guard{store: store, audit: aud, log: log}
}

type ctxKey struct{}

type requestInfo struct {
	client  Client
	purpose string
}

// FromContext returns the client of an authenticated request.
func FromContext(ctx context.Context) (Client, bool) {
	ri, ok := ctx.Value(ctxKey{}).(*requestInfo)
	if !ok {
		return Client{}, false
	}
	return ri.client, true
}

// PurposeFromContext returns the purpose the request declared in its header or query, if any.
func PurposeFromContext(ctx context.Context) string {
	if ri, ok := ctx.Value(ctxKey{}).(*requestInfo); ok {
		return ri.purpose
	}
	return ""
}

// Option tunes Require.
type Option func(*requirement)

type requirement struct {
	scope        string
	needsPurpose bool
	action       string
}

// WithPurpose makes the purpose (header X-Purpose or query parameter purpose) mandatory.
func WithPurpose() Option { return func(r *requirement) { r.needsPurpose = true } }

// WithAction names the audit action of refusals (default audit.ActionRequest).
func WithAction(action string) Option { return func(r *requirement) { r.action = action } }

// Require returns middleware admitting requests whose bearer token is valid, within its client's
// rate limit, holding scope ("" admits any client; "lookup:*" any lookup scope), and declaring, if
// they declare one, a purpose the client may declare. It refuses the others with 401, 429 or 403.
func (g *Guard) Require(scope string, opts ...Option) func(http.Handler) http.Handler {
	req := requirement{scope: scope, action: audit.ActionRequest}
	for _, o := range opts {
		o(&req)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			token, ok := bearer(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="socialhub"`)
				g.Refuse(w, r, Refusal{Status: http.StatusUnauthorized, Action: req.action, Reason: "a bearer token is required"})
				return
			}
			c, err := g.store.Authenticate(ctx, token)
			if errors.Is(err, ErrUnauthorized) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="socialhub", error="invalid_token"`)
				g.Refuse(w, r, Refusal{Status: http.StatusUnauthorized, Action: req.action, Reason: "the token is unknown or revoked"})
				return
			}
			if err != nil {
				g.log.ErrorContext(ctx, "authentication failed", slog.Any("error", err))
				writeError(w, http.StatusServiceUnavailable, "authentication is unavailable, try again", nil)
				return
			}
			ri := &requestInfo{client: c, purpose: declaredPurpose(r)}
			r = r.WithContext(context.WithValue(ctx, ctxKey{}, ri))
			if !g.allow(c) {
				g.log.WarnContext(ctx, "rate limit", slog.String("client", c.ID))
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(1/c.Rate))))
				writeError(w, http.StatusTooManyRequests, "rate limit exceeded", nil)
				return
			}
			if !c.HasScope(req.scope) {
				g.Refuse(w, r, Refusal{Status: http.StatusForbidden, Action: req.action, Purpose: ri.purpose,
					Reason: "the client does not hold scope " + req.scope})
				return
			}
			if ri.purpose == "" && req.needsPurpose {
				g.Refuse(w, r, Refusal{Status: http.StatusForbidden, Action: req.action,
					Reason: "a purpose is required (header " + PurposeHeader + " or query parameter purpose)",
					Fields: []FieldError{{Field: "purpose", Message: "required"}}})
				return
			}
			if ri.purpose != "" && !c.MayDeclare(ri.purpose) {
				g.Refuse(w, r, Refusal{Status: http.StatusForbidden, Action: req.action, Purpose: ri.purpose,
					Reason: "the client may not declare purpose " + ri.purpose,
					Fields: []FieldError{{Field: "purpose", Message: "not a purpose of this client"}}})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func declaredPurpose(r *http.Request) string {
	if p := strings.TrimSpace(r.Header.Get(PurposeHeader)); p != "" {
		return p
	}
	return strings.TrimSpace(r.URL.Query().Get("purpose"))
}

func (g *Guard) allow(c Client) bool {
	v, ok := g.limiters.Load(c.ID)
	l, _ := v.(*limiter)
	// A client whose limit changed gets a new limiter.
	if !ok || l.rate != c.Rate || l.burst != c.Burst {
		l = &limiter{rate: c.Rate, burst: c.Burst, lim: rate.NewLimiter(rate.Limit(c.Rate), c.Burst)}
		g.limiters.Store(c.ID, l)
	}
	return l.lim.Allow()
}

// FieldError names a field of the request that is wrong.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Refusal is a refused request, as answered and audited.
type Refusal struct {
	Status  int    // 401 or 403 (or 4xx)
	Action  string // audit action; audit.ActionRequest when empty
	Subject string // the resident's pseudonym, when the request names one (never a national id)
	Purpose string
	CaseID  string
	Reason  string // said to the client and kept in the audit row
	Fields  []FieldError
}

var pseudonymPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Refuse answers a refusal and audits it with the request's client (if authenticated), method and
// path. Handlers use it for refusals of their own (a claim outside the client's scopes, a purpose
// named in the body it may not declare). The subject defaults to the path's {pseudonym}.
func (g *Guard) Refuse(w http.ResponseWriter, r *http.Request, f Refusal) {
	ctx := r.Context()
	if f.Action == "" {
		f.Action = audit.ActionRequest
	}
	if f.Subject == "" {
		if p := r.PathValue("pseudonym"); pseudonymPattern.MatchString(p) {
			f.Subject = p
		}
	}
	if f.Purpose == "" {
		f.Purpose = PurposeFromContext(ctx)
	}
	detail, _ := json.Marshal(struct {
		Method string       `json:"method"`
		Path   string       `json:"path"`
		Reason string       `json:"reason"`
		Fields []FieldError `json:"fields,omitempty"`
	}{r.Method, r.URL.Path, f.Reason, f.Fields})
	e := audit.Entry{Action: f.Action, Outcome: audit.OutcomeRefused, Status: f.Status, Subject: f.Subject,
		Purpose: truncate(f.Purpose, 64), CaseID: truncate(f.CaseID, 128), Detail: detail}
	if c, ok := FromContext(ctx); ok {
		e.ClientID, e.ClientName, e.ClientKind = c.ID, c.Name, string(c.Kind)
	}
	if _, err := g.audit.Append(ctx, e); err != nil {
		// The refusal stands either way; the operator must learn the log missed it.
		g.log.ErrorContext(ctx, "a refusal could not be audited", slog.Any("error", err),
			slog.String("route", r.Pattern), slog.Int("status", f.Status))
	}
	writeError(w, f.Status, f.Reason, f.Fields)
}

// truncate keeps at most n bytes of s without cutting a character, and drops invalid UTF-8, which
// PostgreSQL would refuse.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// writeError answers {"error": ..., "fields": [...]}.
func writeError(w http.ResponseWriter, status int, msg string, fields []FieldError) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		Error  string       `json:"error"`
		Fields []FieldError `json:"fields,omitempty"`
	}{msg, fields})
}
