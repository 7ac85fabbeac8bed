package jsonhttp

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// OperatorAllowed tells whether r may make an operator request (start a run, read or replay dead
// letters, decide a review item): with an admin token configured, only a request bearing it;
// without one, only a request from this machine.
func OperatorAllowed(adminToken string, r *http.Request) bool {
	if adminToken != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		return ok && subtle.ConstantTimeCompare([]byte(got), []byte(adminToken)) == 1
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

// RefuseOperator answers a request OperatorAllowed refused: 401 with a challenge when an admin
// token is configured, 403 when the request did not come from this machine.
func RefuseOperator(w http.ResponseWriter, adminToken string) {
	if adminToken != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="socialhub"`)
		Write(w, http.StatusUnauthorized, map[string]string{"error": "an operator token is required (Authorization: Bearer ...)"})
		return
	}
	Write(w, http.StatusForbidden, map[string]string{"error": "without SOCIALHUB_ADMIN_TOKEN set, operator requests are accepted only from this machine"})
}
