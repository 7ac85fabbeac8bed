package jsonhttp_test

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/jsonhttp"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	jsonhttp.Write(rec, http.StatusCreated, map[string]string{"name": "Семейная медиация <ТЦСО>"})
	require.Equal(t, http.StatusCreated, rec.Code)
	require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Equal(t, `{"name":"Семейная медиация <ТЦСО>"}`+"\n", rec.Body.String())

	rec = httptest.NewRecorder()
	jsonhttp.Write(rec, http.StatusOK, math.Inf(1)) // not JSON: no half body, a 500
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.JSONEq(t, `{"error":"internal error"}`, rec.Body.String())
}

func TestOperatorAllowed(t *testing.T) {
	t.Parallel()
	local := httptest.NewRequest(http.MethodPost, "/v1/dlq/replay", nil) // RemoteAddr 192.0.2.1
	local.RemoteAddr = "127.0.0.1:53000"
	remote := httptest.NewRequest(http.MethodPost, "/v1/dlq/replay", nil)
	require.True(t, jsonhttp.OperatorAllowed("", local), "no token: this machine may")
	require.False(t, jsonhttp.OperatorAllowed("", remote), "no token: others may not")

	withToken := httptest.NewRequest(http.MethodPost, "/v1/dlq/replay", nil)
	withToken.Header.Set("Authorization", "Bearer s3cret")
	require.True(t, jsonhttp.OperatorAllowed("s3cret", withToken))
	require.False(t, jsonhttp.OperatorAllowed("s3cret", local), "with a token, even this machine must bear it")

	rec := httptest.NewRecorder()
	jsonhttp.RefuseOperator(rec, "s3cret")
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.NotEmpty(t, rec.Header().Get("WWW-Authenticate"))
	rec = httptest.NewRecorder()
	jsonhttp.RefuseOperator(rec, "")
	require.Equal(t, http.StatusForbidden, rec.Code)
}
