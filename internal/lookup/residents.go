package lookup

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"socialhub/internal/attest"
	"socialhub/internal/audit"
	"socialhub/internal/catalog"
	"socialhub/internal/clients"
	"socialhub/internal/eligibility"
	"socialhub/internal/jsonhttp"
)

// EligibleService is a service a resident may use, with the rule that decided.
type EligibleService struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Rule Rule   `json:"rule"`
}

// Rule is an eligibility rule as the API shows it.
type Rule struct {
	ID          string `json:"id"`
	Expression  string `json:"expression"`
	Explanation string `json:"explanation"`
}

// maxServicesPerRule bounds the services listed per rule: one page of the catalog.
const maxServicesPerRule = catalog.MaxPerPage

func (s *Service) eligibleServices(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	client, _ := clients.FromContext(ctx)
	subject := r.PathValue("pseudonym")
	if !pseudonymPattern.MatchString(subject) {
		writeError(w, http.StatusBadRequest, "invalid pseudonym", []clients.FieldError{{Field: "pseudonym", Message: "must be 64 lower-case hex digits"}})
		return
	}
	res, decisions, err := s.opts.Eligibility.Eligibility(ctx, subject)
	found := err == nil
	if err != nil && !errors.Is(err, eligibility.ErrNotFound) {
		s.log.ErrorContext(ctx, "eligibility query failed", slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "the query failed, try again", nil)
		return
	}
	services := []EligibleService{}
	var ruleIDs []string
	for _, d := range decisions {
		if !d.Eligible {
			continue
		}
		ruleIDs = append(ruleIDs, d.Rule.ID)
		list, err := s.servicesOf(r, d.Rule)
		if err != nil {
			s.log.ErrorContext(ctx, "eligibility query failed", slog.Any("error", err))
			writeError(w, http.StatusServiceUnavailable, "the query failed, try again", nil)
			return
		}
		services = append(services, list...)
	}
	status := http.StatusOK
	if !found {
		status = http.StatusNotFound
	}
	detail, _ := json.Marshal(map[string]any{"subject_found": found, "eligible_rules": ruleIDs, "services": len(services)})
	if _, err := s.opts.Audit.Append(ctx, audit.Entry{ClientID: client.ID, ClientName: client.Name, ClientKind: string(client.Kind),
		Action: audit.ActionEligibleServices, Outcome: audit.OutcomeAnswered, Status: status, Subject: subject,
		Purpose: clients.PurposeFromContext(ctx), CaseID: r.URL.Query().Get("case_id"), Detail: detail}); err != nil {
		s.log.ErrorContext(ctx, "eligibility query not audited, not answered", slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "the query cannot be audited now, try again", nil)
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, "the registry holds no resident with this pseudonym", nil)
		return
	}
	jsonhttp.Write(w, http.StatusOK, map[string]any{
		"pseudonym": subject, "as_of": res.SeenAt.UTC().Format(time.DateOnly), "services": services,
	})
}

// servicesOf lists the catalog services a rule governs.
func (s *Service) servicesOf(r *http.Request, rule *eligibility.Rule) ([]EligibleService, error) {
	ctx := r.Context()
	shown := Rule{ID: rule.ID, Expression: rule.Expression, Explanation: rule.Explanation}
	var out []EligibleService
	for _, id := range rule.Services.ServiceIDs {
		doc, err := s.opts.Catalog.GetService(ctx, id)
		if errors.Is(err, catalog.ErrNotFound) {
			continue // a rule may name a service the catalog no longer has
		}
		if err != nil {
			return nil, err
		}
		var svc serviceDoc
		if err := json.Unmarshal(doc, &svc); err != nil {
			return nil, err
		}
		out = append(out, EligibleService{ID: svc.ID, Name: svc.Name, Rule: shown})
	}
	if rule.Services.TaxonomyTerm == "" {
		return out, nil
	}
	page, err := s.opts.Catalog.ListServices(ctx, catalog.ServiceFilter{TaxonomyTermID: rule.Services.TaxonomyTerm, PerPage: maxServicesPerRule})
	if err != nil {
		return nil, err
	}
	for _, raw := range page.Contents {
		var svc serviceDoc
		if err := json.Unmarshal(raw, &svc); err != nil {
			return nil, err
		}
		if rule.MatchesName(svc.Name) {
			out = append(out, EligibleService{ID: svc.ID, Name: svc.Name, Rule: shown})
		}
	}
	return out, nil
}

// AccessEntry is a row of a resident's access history.
type AccessEntry struct {
	Seq        int64           `json:"seq"`
	At         time.Time       `json:"at"`
	ClientID   string          `json:"client_id"`
	ClientName string          `json:"client_name"`
	ClientKind string          `json:"client_kind"`
	Action     string          `json:"action"`
	Outcome    string          `json:"outcome"`
	Status     int             `json:"status"`
	Purpose    string          `json:"purpose"`
	CaseID     string          `json:"case_id"`
	Detail     json.RawMessage `json:"detail"`
}

func (s *Service) accessLog(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	client, _ := clients.FromContext(ctx)
	subject := r.PathValue("pseudonym")
	var fields []clients.FieldError
	if !pseudonymPattern.MatchString(subject) {
		fields = append(fields, clients.FieldError{Field: "pseudonym", Message: "must be 64 lower-case hex digits"})
	}
	q := r.URL.Query()
	limit, before := 100, int64(0)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			fields = append(fields, clients.FieldError{Field: "limit", Message: "an integer from 1 to 1000"})
		}
		limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			fields = append(fields, clients.FieldError{Field: "before", Message: "a positive sequence number"})
		}
		before = n
	}
	if len(fields) > 0 {
		writeError(w, http.StatusBadRequest, "invalid query", fields)
		return
	}
	// Reading the history is itself an access: audited first, so it shows in what it returns.
	detail, _ := json.Marshal(map[string]any{"limit": limit, "before": before})
	if _, err := s.opts.Audit.Append(ctx, audit.Entry{ClientID: client.ID, ClientName: client.Name, ClientKind: string(client.Kind),
		Action: audit.ActionAccessLog, Outcome: audit.OutcomeAnswered, Status: http.StatusOK, Subject: subject,
		Purpose: clients.PurposeFromContext(ctx), CaseID: q.Get("case_id"), Detail: detail}); err != nil {
		s.log.ErrorContext(ctx, "access log query not audited, not answered", slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "the query cannot be audited now, try again", nil)
		return
	}
	rows, err := s.opts.Audit.ForSubject(ctx, subject, before, limit)
	if err != nil {
		s.log.ErrorContext(ctx, "access log query failed", slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "the query failed, try again", nil)
		return
	}
	out := make([]AccessEntry, len(rows))
	for i, e := range rows {
		out[i] = AccessEntry{Seq: e.Seq, At: e.At, ClientID: e.ClientID, ClientName: e.ClientName, ClientKind: e.ClientKind,
			Action: e.Action, Outcome: e.Outcome, Status: e.Status, Purpose: e.Purpose, CaseID: e.CaseID, Detail: e.Detail}
	}
	jsonhttp.Write(w, http.StatusOK, map[string]any{"pseudonym": subject, "entries": out})
}

func (s *Service) jwks(w http.ResponseWriter, r *http.Request) {
	set, err := s.opts.Keys.JWKS(r.Context())
	if err != nil {
		s.log.ErrorContext(r.Context(), "JWKS failed", slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "the keys cannot be read now, try again", nil)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	jsonhttp.Write(w, http.StatusOK, set)
}

// VerifyResult is the answer of POST /v1/attestations/verify.
type VerifyResult struct {
	Valid  bool           `json:"valid"`
	Error  string         `json:"error,omitempty"`
	Claims *attest.Claims `json:"claims,omitempty"`
}

func (s *Service) verify(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Attestation string `json:"attestation"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Attestation == "" {
		writeError(w, http.StatusBadRequest, "invalid request", []clients.FieldError{{Field: "attestation", Message: "a compact JWS is required"}})
		return
	}
	c, err := s.opts.Keys.Verify(r.Context(), body.Attestation)
	switch {
	case errors.Is(err, attest.ErrInvalid):
		jsonhttp.Write(w, http.StatusOK, VerifyResult{Valid: false, Error: err.Error()})
	case err != nil:
		s.log.ErrorContext(r.Context(), "verification failed", slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "the keys cannot be read now, try again", nil)
	default:
		jsonhttp.Write(w, http.StatusOK, VerifyResult{Valid: true, Claims: &c})
	}
}
