package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"socialhub/internal/catalog"
)

// maxSearchLen bounds the search text, which becomes a full-text query.
const maxSearchLen = 500

// query is the parsed list parameters, with the problems found.
type query struct {
	search, taxonomyTermID, organizationID string
	modifiedAfter                          time.Time
	page, perPage                          int
	problems                               []fieldError
}

func parseQuery(r *http.Request) *query {
	v := r.URL.Query()
	q := &query{
		search: v.Get("search"), taxonomyTermID: v.Get("taxonomy_term_id"), organizationID: v.Get("organization_id"),
		page: 1, perPage: catalog.DefaultPerPage,
	}
	if !utf8.ValidString(q.search) || len(q.search) > maxSearchLen {
		q.fail("search", fmt.Sprintf("must be valid UTF-8 text of at most %d bytes", maxSearchLen))
	}
	if q.organizationID != "" {
		if _, err := uuid.Parse(q.organizationID); err != nil {
			q.fail("organization_id", "must be an organization id (a UUID)")
		}
	}
	if s := v.Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			q.fail("page", "must be an integer from 1")
		}
		q.page = n
	}
	if s := v.Get("per_page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > catalog.MaxPerPage {
			q.fail("per_page", fmt.Sprintf("must be an integer from 1 to %d", catalog.MaxPerPage))
		}
		q.perPage = n
	}
	if s := v.Get("modified_after"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			q.fail("modified_after", "must be an RFC 3339 date-time (2024-05-01T10:00:00Z) or a date (2024-05-01)")
		}
		q.modifiedAfter = t
	}
	return q
}

// parseTime accepts an RFC 3339 date-time or a date, taken as midnight UTC.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, s)
}

func (q *query) fail(field, msg string) {
	q.problems = append(q.problems, fieldError{Field: field, Message: msg})
}

// badRequest answers 400 with the problems, if any, and reports whether it did.
func (q *query) badRequest(w http.ResponseWriter) bool {
	if len(q.problems) == 0 {
		return false
	}
	writeError(w, http.StatusBadRequest, errBadQuery.Error(), q.problems)
	return true
}
