package lookup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"

	"socialhub/internal/attest"
	"socialhub/internal/audit"
	"socialhub/internal/catalog"
	"socialhub/internal/clients"
	"socialhub/internal/eligibility"
	"socialhub/internal/jsonhttp"
	"socialhub/internal/normalize"
	"socialhub/internal/pseudonym"
)

// Claims a lookup may ask; each needs the scope "lookup:<claim>".
const (
	ClaimRegisteredAddress    = "registered_address"
	ClaimHouseholdComposition = "household_composition"
	ClaimDisabilityStatus     = "disability_status"
	ClaimPensionStatus        = "pension_status"
	ClaimLowIncomeStatus      = "low_income_status"
	ClaimLargeFamilyStatus    = "large_family_status"
	ClaimEligibleFor          = "eligible_for"
)

var claimTypes = []string{ClaimRegisteredAddress, ClaimHouseholdComposition, ClaimDisabilityStatus, ClaimPensionStatus,
	ClaimLowIncomeStatus, ClaimLargeFamilyStatus, ClaimEligibleFor}

// Options are what the service needs.
type Options struct {
	Eligibility *eligibility.Store // with rules, for eligible_for and eligible-services
	Catalog     *catalog.Store
	Audit       *audit.Log
	Guard       *clients.Guard
	Keys        *attest.Keys
	Pseudonyms  *pseudonym.Pseudonymizer // turns a national id into its pseudonym
	Logger      *slog.Logger
}

// Service serves the lookups API.
type Service struct {
	opts Options
	log  *slog.Logger
}

// New returns the service.
func New(opts Options) *Service {
	s := &Service{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Mount registers the routes.
func (s *Service) Mount(m interface {
	Handle(pattern string, h http.Handler)
}) {
	g := s.opts.Guard
	m.Handle("POST /v1/lookups", g.Require(clients.LookupPrefix+"*", clients.WithAction(audit.ActionLookup))(http.HandlerFunc(s.lookup)))
	m.Handle("GET /v1/residents/{pseudonym}/eligible-services", g.Require(clients.ScopeEligibilityRead,
		clients.WithPurpose(), clients.WithAction(audit.ActionEligibleServices))(http.HandlerFunc(s.eligibleServices)))
	m.Handle("POST /v1/residents/eligible-services", g.Require(clients.ScopeEligibilityRead,
		clients.WithPurpose(), clients.WithAction(audit.ActionEligibleServices))(http.HandlerFunc(s.eligibleServicesByBody)))
	m.Handle("GET /v1/residents/{pseudonym}/access-log", g.Require(clients.ScopeAuditRead,
		clients.WithPurpose(), clients.WithAction(audit.ActionAccessLog))(http.HandlerFunc(s.accessLog)))
	m.Handle("GET /.well-known/jwks.json", http.HandlerFunc(s.jwks))
	m.Handle("POST /v1/attestations/verify", http.HandlerFunc(s.verify))
}

// Claim is one question of a lookup. Which fields count depends on Type.
type Claim struct {
	Type string `json:"type"`
	// registered_address: the address (street, building, flat) and/or the district or okrug to check.
	Address  string `json:"address,omitempty"`
	District string `json:"district,omitempty"`
	Okrug    string `json:"okrug,omitempty"`
	// household_composition: the counts to confirm (each given one must match).
	Members                  *int `json:"members,omitempty"`
	ChildrenUnder18          *int `json:"children_under_18,omitempty"`
	ChildrenWithDisabilities *int `json:"children_with_disabilities,omitempty"`
	// disability_status: the group to confirm (I, II, III, child); empty asks "any group".
	Group string `json:"group,omitempty"`
	// eligible_for: the catalog service.
	ServiceID string `json:"service_id,omitempty"`
}

// Subject names the resident: a national id (СНИЛС), pseudonymized on arrival, or a pseudonym.
type Subject struct {
	NationalID string `json:"national_id,omitempty"`
	Pseudonym  string `json:"pseudonym,omitempty"`
}

// Request is the body of POST /v1/lookups.
type Request struct {
	Subject Subject `json:"subject"`
	Claims  []Claim `json:"claims"`
	Purpose string  `json:"purpose"`
	CaseID  string  `json:"case_id"`
}

// Response is the answer of POST /v1/lookups.
type Response struct {
	Subject      string          `json:"subject"` // the pseudonym
	SubjectFound bool            `json:"subject_found"`
	Answers      []attest.Answer `json:"answers"`
	Purpose      string          `json:"purpose"`
	CaseID       string          `json:"case_id"`
	AuditSeq     int64           `json:"audit_seq"`
	Attestation  string          `json:"attestation"`
	ExpiresAt    time.Time       `json:"expires_at"`
}

var pseudonymPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// maxBody bounds a lookup request.
const maxBody = 64 << 10

func (s *Service) lookup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	client, _ := clients.FromContext(ctx)
	req, subject, fields := s.decode(r)
	if len(fields) > 0 {
		writeError(w, http.StatusBadRequest, "invalid lookup", fields)
		return
	}
	asked := make([]string, len(req.Claims))
	for i, c := range req.Claims {
		asked[i] = c.Type
	}
	refuse := func(reason string, fields []clients.FieldError) {
		s.opts.Guard.Refuse(w, r, clients.Refusal{Status: http.StatusForbidden, Action: audit.ActionLookup, Subject: subject,
			Purpose: req.Purpose, CaseID: req.CaseID, Reason: reason + " (claims asked: " + strings.Join(asked, ", ") + ")", Fields: fields})
	}
	var missing []clients.FieldError
	for i, c := range req.Claims {
		if !client.HasScope(clients.LookupPrefix + c.Type) {
			missing = append(missing, clients.FieldError{Field: fmt.Sprintf("claims[%d].type", i), Message: "the client does not hold scope lookup:" + c.Type})
		}
	}
	if len(missing) > 0 {
		refuse("a claim is outside the client's scopes", missing)
		return
	}
	if !client.MayDeclare(req.Purpose) {
		refuse("the client may not declare purpose "+req.Purpose, []clients.FieldError{{Field: "purpose", Message: "not a purpose of this client"}})
		return
	}

	answers, found, fields, err := s.answer(ctx, subject, req.Claims)
	if err != nil && ctx.Err() != nil {
		// The client went away (or the hub is stopping): nothing was answered, nothing to audit.
		s.log.DebugContext(ctx, "lookup abandoned by the client", slog.Any("error", err))
		return
	}
	if err != nil {
		s.log.ErrorContext(ctx, "lookup failed", slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "the lookup failed, try again", nil)
		return
	}
	if len(fields) > 0 {
		writeError(w, http.StatusBadRequest, "invalid lookup", fields)
		return
	}
	qhash := questionHash(subject, req)
	detail, _ := json.Marshal(map[string]any{"claims": req.Claims, "question_hash": qhash, "subject_found": found, "answers": answers})
	entry, err := s.opts.Audit.Append(ctx, audit.Entry{ClientID: client.ID, ClientName: client.Name, ClientKind: string(client.Kind),
		Action: audit.ActionLookup, Outcome: audit.OutcomeAnswered, Status: http.StatusOK, Subject: subject,
		Purpose: req.Purpose, CaseID: req.CaseID, Detail: detail})
	if err != nil && ctx.Err() != nil {
		s.log.DebugContext(ctx, "lookup abandoned by the client before it was audited", slog.Any("error", err))
		return
	}
	if err != nil {
		// No answer leaves unaudited.
		s.log.ErrorContext(ctx, "lookup not audited, not answered", slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "the lookup cannot be audited now, try again", nil)
		return
	}
	token, signed, err := s.opts.Keys.Sign(ctx, attest.Claims{Audience: client.ID, Subject: subject, QuestionHash: qhash,
		SubjectFound: found, Answers: answers, Purpose: req.Purpose, CaseID: req.CaseID, AuditSeq: entry.Seq})
	if err != nil {
		s.log.ErrorContext(ctx, "attestation failed", slog.Any("error", err), slog.Int64("audit_seq", entry.Seq))
		writeError(w, http.StatusServiceUnavailable, "the attestation cannot be signed now, try again", nil)
		return
	}
	jsonhttp.Write(w, http.StatusOK, Response{Subject: subject, SubjectFound: found, Answers: answers, Purpose: req.Purpose,
		CaseID: req.CaseID, AuditSeq: entry.Seq, Attestation: token, ExpiresAt: time.Unix(signed.Expiry, 0).UTC()})
}

// decode reads and checks the request and returns the subject's pseudonym. Field messages never
// repeat a national id.
func (s *Service) decode(r *http.Request) (Request, string, []clients.FieldError) {
	var req Request
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, "", []clients.FieldError{{Field: "body", Message: "not a lookup request: " + jsonReason(err)}}
	}
	var fields []clients.FieldError
	bad := func(field, msg string) { fields = append(fields, clients.FieldError{Field: field, Message: msg}) }
	var subject string
	switch {
	case req.Subject.NationalID != "" && req.Subject.Pseudonym != "":
		bad("subject", "give national_id or pseudonym, not both")
	case req.Subject.NationalID != "" && s.opts.Pseudonyms == nil:
		bad("subject.national_id", "this hub has no pseudonym key (SOCIALHUB_PSEUDONYM_KEY): send the pseudonym instead")
	case req.Subject.NationalID != "":
		p, err := s.opts.Pseudonyms.Pseudonym(req.Subject.NationalID)
		if err != nil {
			bad("subject.national_id", "not a valid СНИЛС")
		}
		subject = p
	case pseudonymPattern.MatchString(req.Subject.Pseudonym):
		subject = req.Subject.Pseudonym
	case req.Subject.Pseudonym != "":
		bad("subject.pseudonym", "must be 64 lower-case hex digits")
	default:
		bad("subject", "national_id or pseudonym is required")
	}
	// From here on only the pseudonym exists.
	req.Subject = Subject{Pseudonym: subject}
	req.Purpose, req.CaseID = strings.TrimSpace(req.Purpose), strings.TrimSpace(req.CaseID)
	if req.Purpose == "" {
		bad("purpose", "required")
	}
	if req.CaseID == "" {
		bad("case_id", "required")
	} else if len(req.CaseID) > 128 {
		bad("case_id", "at most 128 bytes")
	}
	if len(req.Claims) == 0 {
		bad("claims", "at least one claim is required")
	}
	if len(req.Claims) > 16 {
		bad("claims", "at most 16 claims")
	}
	for i, c := range req.Claims {
		f := fmt.Sprintf("claims[%d]", i)
		switch c.Type {
		case ClaimRegisteredAddress:
			if strings.TrimSpace(c.Address) == "" && c.District == "" && c.Okrug == "" {
				bad(f, "registered_address needs an address, a district or an okrug to check")
			}
			if c.District != "" {
				if _, err := normalize.District(c.District); err != nil {
					bad(f+".district", "not a district or settlement of Moscow")
				}
			}
			if c.Okrug != "" {
				if _, err := normalize.Okrug(c.Okrug); err != nil {
					bad(f+".okrug", "not an okrug of Moscow")
				}
			}
		case ClaimHouseholdComposition:
			if c.Members == nil && c.ChildrenUnder18 == nil && c.ChildrenWithDisabilities == nil {
				bad(f, "household_composition needs members, children_under_18 or children_with_disabilities to check")
			}
		case ClaimDisabilityStatus:
			switch c.Group {
			case "", "I", "II", "III", "child":
			default:
				bad(f+".group", "one of I, II, III, child, or empty for any group")
			}
		case ClaimEligibleFor:
			if c.ServiceID == "" {
				bad(f+".service_id", "required")
			}
		case ClaimPensionStatus, ClaimLowIncomeStatus, ClaimLargeFamilyStatus:
		default:
			bad(f+".type", "one of "+strings.Join(claimTypes, ", "))
		}
	}
	return req, subject, fields
}

func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("JSON syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s has the wrong type", te.Field)
	}
	// Unknown-field errors name the field, not its value.
	if strings.HasPrefix(err.Error(), "json: unknown field") {
		return err.Error()
	}
	return "unreadable JSON"
}

// questionHash is the hex SHA-256 of the canonical question: the claims as decoded (national id
// already replaced by the pseudonym), purpose and case id.
func questionHash(subject string, req Request) string {
	b, _ := json.Marshal(struct {
		Subject string  `json:"sub"`
		Claims  []Claim `json:"claims"`
		Purpose string  `json:"purpose"`
		CaseID  string  `json:"case_id"`
	}{subject, req.Claims, req.Purpose, req.CaseID})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// answer decides each claim. A resident the registry does not hold gets "no" to every claim.
func (s *Service) answer(ctx context.Context, subject string, claims []Claim) ([]attest.Answer, bool, []clients.FieldError, error) {
	res, decisions, err := s.opts.Eligibility.Eligibility(ctx, subject)
	found := err == nil
	if err != nil && !errors.Is(err, eligibility.ErrNotFound) {
		return nil, false, nil, err
	}
	var facts residentFacts
	asOf := ""
	if found {
		if err := json.Unmarshal(res.Facts, &facts); err != nil {
			return nil, false, nil, fmt.Errorf("error reading the facts of %s: %w", subject, err)
		}
		asOf = res.SeenAt.UTC().Format(time.DateOnly)
	}
	verdicts := map[string]bool{}
	for _, d := range decisions {
		verdicts[d.Rule.ID] = d.Eligible
	}
	var fields []clients.FieldError
	out := make([]attest.Answer, len(claims))
	for i, c := range claims {
		a := attest.Answer{Claim: c.Type, AsOf: asOf}
		switch c.Type {
		case ClaimRegisteredAddress:
			a.Answer = found && facts.registeredAt(c)
		case ClaimHouseholdComposition:
			h := facts.Household
			a.Answer = found && eqPtr(c.Members, h.Members) && eqPtr(c.ChildrenUnder18, h.ChildrenUnder18) &&
				eqPtr(c.ChildrenWithDisabilities, h.ChildrenWithDisabilities)
		case ClaimDisabilityStatus:
			a.Answer = found && facts.DisabilityGroup != "" && facts.DisabilityGroup != "none" &&
				(c.Group == "" || c.Group == facts.DisabilityGroup)
		case ClaimPensionStatus:
			a.Answer = found && facts.Pensioner
		case ClaimLowIncomeStatus:
			a.Answer = found && facts.LowIncome
		case ClaimLargeFamilyStatus:
			a.Answer = found && facts.LargeFamily
		case ClaimEligibleFor:
			rules, err := s.governing(ctx, c.ServiceID)
			if errors.Is(err, catalog.ErrNotFound) {
				fields = append(fields, clients.FieldError{Field: fmt.Sprintf("claims[%d].service_id", i), Message: "no service of the catalog has this id"})
				continue
			}
			if err != nil {
				return nil, false, nil, err
			}
			// Every rule governing the service must hold; a service without a rule is open to all.
			a.Answer = found
			var ids []string
			for _, r := range rules {
				ids = append(ids, r.ID)
				a.Answer = a.Answer && verdicts[r.ID]
			}
			a.Rule = strings.Join(ids, ",")
		}
		out[i] = a
	}
	return out, found, fields, nil
}

func eqPtr(want *int, have int) bool { return want == nil || *want == have }

// governing returns the rules that govern a catalog service.
func (s *Service) governing(ctx context.Context, serviceID string) ([]*eligibility.Rule, error) {
	doc, err := s.opts.Catalog.GetService(ctx, serviceID)
	if err != nil {
		return nil, err
	}
	var svc serviceDoc
	if err := json.Unmarshal(doc, &svc); err != nil {
		return nil, fmt.Errorf("error reading service %s: %w", serviceID, err)
	}
	var out []*eligibility.Rule
	if rules := s.opts.Eligibility.Rules(); rules != nil {
		for _, r := range rules.List() {
			if r.Governs(svc.ID, svc.termIDs(), svc.Name) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

type serviceDoc struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Attributes []struct {
		TaxonomyTermID string `json:"taxonomy_term_id"`
	} `json:"attributes"`
}

func (s serviceDoc) termIDs() []string {
	var out []string
	for _, a := range s.Attributes {
		if a.TaxonomyTermID != "" {
			out = append(out, a.TaxonomyTermID)
		}
	}
	return out
}

// residentFacts are the resident document's fields the claims read.
type residentFacts struct {
	Address struct {
		Address1 string `json:"address_1"`
		District string `json:"district"`
		Okrug    string `json:"okrug"`
	} `json:"address"`
	Household struct {
		Members                  int `json:"members"`
		ChildrenUnder18          int `json:"children_under_18"`
		ChildrenWithDisabilities int `json:"children_with_disabilities"`
	} `json:"household"`
	DisabilityGroup string `json:"disability_group"`
	Pensioner       bool   `json:"pensioner"`
	LowIncome       bool   `json:"low_income"`
	LargeFamily     bool   `json:"large_family"`
}

// registeredAt checks each part of the address the claim gives; all must match.
func (f *residentFacts) registeredAt(c Claim) bool {
	if c.Address != "" && foldAddress(c.Address) != foldAddress(f.Address.Address1) {
		return false
	}
	if c.District != "" {
		p, err := normalize.District(c.District)
		if err != nil || !strings.EqualFold(p.District, f.Address.District) {
			return false
		}
	}
	if c.Okrug != "" {
		o, err := normalize.Okrug(c.Okrug)
		if err != nil || o != f.Address.Okrug {
			return false
		}
	}
	return true
}

// foldAddress lets spellings of one address meet: case, ё/е, punctuation and spacing aside.
func foldAddress(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r == 'ё':
			r = 'е'
		case unicode.IsLetter(r) || unicode.IsDigit(r):
		default:
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

func writeError(w http.ResponseWriter, status int, msg string, fields []clients.FieldError) {
	jsonhttp.Write(w, status, struct {
		Error  string               `json:"error"`
		Fields []clients.FieldError `json:"fields,omitempty"`
	}{msg, fields})
}
