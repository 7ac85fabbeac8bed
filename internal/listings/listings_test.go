package listings_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/audit"
	"socialhub/internal/clients"
	"socialhub/internal/listings"
	"socialhub/internal/validate"
)

func TestNGOCannotTouchAnotherOrganizationsListing(t *testing.T) {
	t.Parallel()
	h := startHub(t, hubOptions{})
	ctx := context.Background()
	_, vera := h.ngo(t, "Фонд «Вера»", "7701234567")
	_, nadezhda := h.ngo(t, "АНО «Надежда»", "7702345678")
	_, unbound := h.ngo(t, "Фонд без привязки", "")

	code, body := h.do(t, http.MethodPut, "/v1/listings/vera-1", vera, listing("vera-1", "Психолог для подростков"))
	require.Equal(t, http.StatusAccepted, code, body)
	head, err := h.audit.Verify(ctx)
	require.NoError(t, err)
	before := head.Rows

	for name, tc := range map[string]struct {
		method string
		body   any
	}{
		"overwrite": {http.MethodPut, listing("vera-1", "Чужая услуга")},
		"delete":    {http.MethodDelete, nil},
		"read":      {http.MethodGet, nil},
	} {
		code, body := h.do(t, tc.method, "/v1/listings/vera-1", nadezhda, tc.body)
		require.Equal(t, http.StatusForbidden, code, name)
		require.Contains(t, body["error"], "another organization", name)
	}
	// A document naming another organization's INN, under a fresh id.
	doc := listing("nadezhda-1", "Юрист")
	doc["organization"] = map[string]any{"id": "x", "name": "Фонд «Вера»", "organization_identifiers": []any{
		map[string]any{"id": "i", "identifier_scheme": "INN", "identifier_type": "ИНН", "identifier": "7701234567"}}}
	code, body = h.do(t, http.MethodPut, "/v1/listings/nadezhda-1", nadezhda, doc)
	require.Equal(t, http.StatusForbidden, code, body)
	require.Equal(t, "organization.organization_identifiers[0]", body["fields"].([]any)[0].(map[string]any)["field"])
	// A client bound to no organization publishes nothing.
	code, _ = h.do(t, http.MethodPut, "/v1/listings/free-1", unbound, listing("free-1", "Юрист"))
	require.Equal(t, http.StatusForbidden, code)

	head, err = h.audit.Verify(ctx)
	require.NoError(t, err)
	require.EqualValues(t, before+5, head.Rows, "every refusal is audited")
	for seq := before + 1; seq <= head.Rows; seq++ {
		e, err := h.audit.Get(ctx, seq)
		require.NoError(t, err)
		require.Equal(t, audit.OutcomeRefused, e.Outcome)
		require.Equal(t, listings.ActionListing, e.Action)
		require.Equal(t, http.StatusForbidden, e.Status)
	}
	// Vera's listing is untouched.
	st := h.status(t, "vera-1", vera, listings.StatusApplied)
	svc, err := h.catalog.GetService(ctx, st["service_id"].(string))
	require.NoError(t, err)
	require.Contains(t, string(svc), "Психолог для подростков")
}

func TestInvalidListingIs422WithEveryReason(t *testing.T) {
	t.Parallel()
	h := startHub(t, hubOptions{})
	_, token := h.ngo(t, "Фонд «Вера»", "7701234567")
	doc := listing("bad-1", "")
	doc["status"] = "открыто"
	doc["email"] = "not-an-email"
	code, body := h.do(t, http.MethodPut, "/v1/listings/bad-1", token, doc)
	require.Equal(t, http.StatusUnprocessableEntity, code, body)
	fields := map[string]bool{}
	for _, f := range body["fields"].([]any) {
		fields[f.(map[string]any)["field"].(string)] = true
	}
	for _, f := range []string{"name", "status", "email"} {
		require.True(t, fields[f], "a reason for %s in %v", f, fields)
	}
	code, body = h.do(t, http.MethodPut, "/v1/listings/bad-1", token, []byte(`{"id": "bad-1",`))
	require.Equal(t, http.StatusUnprocessableEntity, code, body)
	code, body = h.do(t, http.MethodPut, "/v1/listings/bad-1", token, listing("other-id", "Юрист"))
	require.Equal(t, http.StatusUnprocessableEntity, code, body)
	require.Equal(t, "id", body["fields"].([]any)[0].(map[string]any)["field"])
	code, _ = h.do(t, http.MethodPut, "/v1/listings/bad%2F1", token, listing("bad/1", "Юрист"))
	require.Equal(t, http.StatusBadRequest, code)
	// Nothing was published: the listing does not exist.
	code, _ = h.do(t, http.MethodGet, "/v1/listings/bad-1", token, nil)
	require.Equal(t, http.StatusNotFound, code)
}

// lenient passes every document, as an older API version might have: validate then rejects it.
type lenient struct{ *validate.Checker }

func (l lenient) Check(entity, dataschema string, data []byte) validate.Result {
	res := l.Checker.Check(entity, dataschema, data)
	res.Reasons = nil
	return res
}

func TestListingStatusThroughItsStages(t *testing.T) {
	t.Parallel()
	h := startHub(t, hubOptions{checker: func(c *validate.Checker) listings.Checker { return lenient{c} }})
	ctx := context.Background()

	// A grant list knows the organization first.
	h.produce(t, "grants", "organization", "grant-7", map[string]any{
		"id": "grant-7", "name": "Благотворительный фонд «Вера»",
		"organization_identifiers": []any{map[string]any{"id": "grant-7-inn", "identifier_scheme": "INN", "identifier_type": "ИНН", "identifier": "7701234567"}},
	})
	var orgID string
	require.Eventually(t, func() bool {
		ids, err := h.catalog.ResolvedIDs(ctx)
		require.NoError(t, err)
		orgID = ids["organization/grants/grant-7"]
		return orgID != ""
	}, 30*time.Second, 20*time.Millisecond)

	// An NGO client not bound yet; an admin claims the organization for it.
	ngo, token := h.ngo(t, "Фонд «Вера»", "")
	_, admin, err := h.clients.Create(ctx, clients.NewClient{Name: "Администратор", Kind: clients.KindAdmin, Scopes: []string{clients.ScopeClientsAdmin}})
	require.NoError(t, err)
	code, body := h.do(t, http.MethodPost, "/v1/organizations/"+orgID+"/claim", token, map[string]any{"client_id": ngo.ID})
	require.Equal(t, http.StatusForbidden, code, "an NGO does not claim for itself: %v", body)
	code, body = h.do(t, http.MethodPost, "/v1/organizations/"+orgID+"/claim", admin, map[string]any{"client_id": ngo.ID})
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "7701234567", body["organization"].(map[string]any)["inn"])
	code, _ = h.do(t, http.MethodPost, "/v1/organizations/"+orgID+"/claim", admin, map[string]any{"client_id": "nobody"})
	require.Equal(t, http.StatusNotFound, code)

	// Accepted, then applied, its organization merged into the grant list's.
	code, body = h.do(t, http.MethodPut, "/v1/listings/vera-1", token, listing("vera-1", "Психолог для подростков"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.Equal(t, listings.StatusAccepted, body["status"])
	st := h.status(t, "vera-1", token, listings.StatusApplied)
	require.Equal(t, orgID, st["organization_id"], "the NGO's listing joined the organization the grant list knew")
	require.Equal(t, true, st["organization_merged"])

	// A document validate rejects (let through by the lenient API) is rejected with its reasons.
	bad := listing("vera-2", "Юрист")
	bad["email"] = "not-an-email"
	code, body = h.do(t, http.MethodPut, "/v1/listings/vera-2", token, bad)
	require.Equal(t, http.StatusAccepted, code, body)
	st = h.status(t, "vera-2", token, listings.StatusRejected)
	require.NotEmpty(t, st["reasons"])
	require.Contains(t, st["reasons"].([]any)[0].(map[string]any)["field"], "email")

	// Deleted.
	code, _ = h.do(t, http.MethodDelete, "/v1/listings/vera-1", token, nil)
	require.Equal(t, http.StatusAccepted, code)
	h.status(t, "vera-1", token, listings.StatusDeleted)
	code, _ = h.do(t, http.MethodDelete, "/v1/listings/never", token, nil)
	require.Equal(t, http.StatusNotFound, code)
}

func TestFeedRegistrationCreatesAScheduledSource(t *testing.T) {
	t.Parallel()
	h := startHub(t, hubOptions{})
	_, vera := h.ngo(t, "Фонд «Вера»", "7701234567")
	_, other := h.ngo(t, "АНО «Надежда»", "7702345678")
	feedSrv := httptest.NewServer(http.NotFoundHandler()) // a feed that is not there yet
	defer feedSrv.Close()

	code, body := h.do(t, http.MethodPost, "/v1/feeds", vera, map[string]any{"url": "ftp://example", "schedule": "@every 1s"})
	require.Equal(t, http.StatusUnprocessableEntity, code, body)
	require.Len(t, body["fields"], 2, "both the URL and a schedule under the minimum interval")

	code, body = h.do(t, http.MethodPost, "/v1/feeds", vera, map[string]any{"url": feedSrv.URL, "schedule": "@every 2h"})
	require.Equal(t, http.StatusCreated, code, body)
	id, source := body["id"].(string), body["source"].(string)
	code, again := h.do(t, http.MethodPost, "/v1/feeds", vera, map[string]any{"url": feedSrv.URL})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, id, again["id"], "the same URL is the same feed")

	// The scheduler holds it, with its schedule, and ran it once; its status tells how it went.
	src, ok := h.sched.Source(source)
	require.True(t, ok)
	require.Equal(t, "hsds", src.Kind)
	require.Equal(t, "@every 2h", src.Schedule)
	var next time.Time
	for _, s := range h.sched.States() {
		if s.Source.Name == source {
			next = s.Next
		}
	}
	require.WithinDuration(t, time.Now().Add(2*time.Hour), next, time.Minute)
	require.Eventually(t, func() bool {
		_, body = h.do(t, http.MethodGet, "/v1/feeds/"+id, vera, nil)
		run, _ := body["last_run"].(map[string]any)
		return run != nil && run["status"] == "failed" && run["error"] != ""
	}, 30*time.Second, 20*time.Millisecond, "the feed's run is reported: %v", body)
	code, list := h.do(t, http.MethodGet, "/v1/feeds", vera, nil)
	require.Equal(t, http.StatusOK, code)
	require.Len(t, list["items"], 1)

	// Another NGO neither sees nor deletes it.
	code, _ = h.do(t, http.MethodGet, "/v1/feeds/"+id, other, nil)
	require.Equal(t, http.StatusForbidden, code)
	code, _ = h.do(t, http.MethodDelete, "/v1/feeds/"+id, other, nil)
	require.Equal(t, http.StatusForbidden, code)
	_, list = h.do(t, http.MethodGet, "/v1/feeds", other, nil)
	require.Empty(t, list["items"])

	code, _ = h.do(t, http.MethodDelete, "/v1/feeds/"+id, vera, nil)
	require.Equal(t, http.StatusNoContent, code)
	_, ok = h.sched.Source(source)
	require.False(t, ok, "a deleted feed is no longer scheduled")
	code, _ = h.do(t, http.MethodGet, "/v1/feeds/"+id, vera, nil)
	require.Equal(t, http.StatusNotFound, code)
}
