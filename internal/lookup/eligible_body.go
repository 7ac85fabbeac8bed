package lookup

import (
	"encoding/json"
	"io"
	"net/http"

	"socialhub/internal/clients"
)

// eligibleBody is the body of POST /v1/residents/eligible-services: the resident named by a
// national id (pseudonymized on arrival) or by a pseudonym.
type eligibleBody struct {
	Subject Subject `json:"subject"`
}

// eligibleServicesByBody answers what GET /v1/residents/{pseudonym}/eligible-services answers, for a
// resident named in the body. A contact-centre operator has the caller's national id, not their
// pseudonym; a national id must never travel in a URL, where proxies and access logs keep it.
func (s *Service) eligibleServicesByBody(w http.ResponseWriter, r *http.Request) {
	var body eligibleBody
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid request", []clients.FieldError{{Field: "body", Message: "not a request: " + jsonReason(err)}})
		return
	}
	var subject string
	var fields []clients.FieldError
	switch sub := body.Subject; {
	case sub.NationalID != "" && sub.Pseudonym != "":
		fields = append(fields, clients.FieldError{Field: "subject", Message: "give national_id or pseudonym, not both"})
	case sub.NationalID != "" && s.opts.Pseudonyms == nil:
		fields = append(fields, clients.FieldError{Field: "subject.national_id", Message: "this hub has no pseudonym key (SOCIALHUB_PSEUDONYM_KEY): send the pseudonym instead"})
	case sub.NationalID != "":
		p, err := s.opts.Pseudonyms.Pseudonym(sub.NationalID)
		if err != nil {
			fields = append(fields, clients.FieldError{Field: "subject.national_id", Message: "not a valid СНИЛС"})
		}
		subject = p
	case pseudonymPattern.MatchString(sub.Pseudonym):
		subject = sub.Pseudonym
	case sub.Pseudonym != "":
		fields = append(fields, clients.FieldError{Field: "subject.pseudonym", Message: "must be 64 lower-case hex digits"})
	default:
		fields = append(fields, clients.FieldError{Field: "subject", Message: "national_id or pseudonym is required"})
	}
	if len(fields) > 0 {
		writeError(w, http.StatusBadRequest, "invalid request", fields)
		return
	}
	r.SetPathValue("pseudonym", subject)
	s.eligibleServices(w, r)
}
