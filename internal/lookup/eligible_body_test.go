package lookup_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/clients"
)

// TestEligibleServicesByBody: the contact centre asks by national id in the body, never in a URL;
// the answer is the one the pseudonym route gives, and it is audited under the pseudonym.
func TestEligibleServicesByBody(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ps := b.resident(t, snils, familyDoc)
	_, operator := b.client(t, clients.KindOperator, clients.ScopeEligibilityRead)

	status, byBody := b.do(t, "POST", "/v1/residents/eligible-services", operator,
		map[string]any{"subject": map[string]any{"national_id": snils}}, clients.PurposeHeader, "consultation")
	require.Equal(t, http.StatusOK, status, byBody)
	status, byPath := b.do(t, "GET", "/v1/residents/"+ps+"/eligible-services", operator, nil, clients.PurposeHeader, "consultation")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, byPath, byBody)
	require.Equal(t, ps, byBody["pseudonym"])

	status, _ = b.do(t, "POST", "/v1/residents/eligible-services", operator,
		map[string]any{"subject": map[string]any{"pseudonym": ps}}, clients.PurposeHeader, "consultation")
	require.Equal(t, http.StatusOK, status)
	status, _ = b.do(t, "POST", "/v1/residents/eligible-services", operator,
		map[string]any{"subject": map[string]any{"national_id": snils}})
	require.Equal(t, http.StatusForbidden, status, "no purpose")

	// Bad input: 400 with the field, never the national id echoed.
	for name, body := range map[string]any{
		"bad snils":     map[string]any{"subject": map[string]any{"national_id": "112-233-445 96"}},
		"both":          map[string]any{"subject": map[string]any{"national_id": snils, "pseudonym": ps}},
		"none":          map[string]any{"subject": map[string]any{}},
		"bad pseudonym": map[string]any{"subject": map[string]any{"pseudonym": "ABC"}},
		"unknown field": map[string]any{"snils": snils},
	} {
		status, out := b.do(t, "POST", "/v1/residents/eligible-services", operator, body, clients.PurposeHeader, "consultation")
		require.Equal(t, http.StatusBadRequest, status, name)
		require.NotEmpty(t, out["fields"], name)
		raw, _ := json.Marshal(out)
		require.NotContains(t, string(raw), "445", name)
	}

	rows, err := b.audit.ForSubject(ctx, ps, 0, 100)
	require.NoError(t, err)
	// The three answers; the refusal for want of a purpose came before the body was read, so it
	// names no resident.
	require.Len(t, rows, 3)
}
