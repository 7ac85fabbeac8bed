package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"socialhub/internal/api"
	"socialhub/internal/catalog"
	"socialhub/internal/pgtest"
)

// An organization and a service that merged into others answer 301 with the winner's address.
func TestMergedIDsRedirect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t, catalog.Migrations())
	store := catalog.NewStore(db.Pool)
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = store.Apply(ctx, tx, []catalog.Record{
		record(t, "DSZN-1", "Семейная медиация", "Помощь медиатора", "ORG-12", `ГБУ ТЦСО "Марьино"`, "family-mediation"),
		record(t, "DSZN-3", "Медиация в семье", "Медиатор", "ORG-13", "ГБУ ЦСА «Люблино»", "family-mediation"),
	})
	require.NoError(t, err)
	winOrg, loseOrg := catalog.CanonicalID(catalog.EntityOrganization, src, "ORG-12"), catalog.CanonicalID(catalog.EntityOrganization, src, "ORG-13")
	winSvc, loseSvc := catalog.CanonicalID(catalog.EntityService, src, "DSZN-1"), catalog.CanonicalID(catalog.EntityService, src, "DSZN-3")
	_, err = store.Merge(ctx, tx, winOrg, loseOrg, "оператор")
	require.NoError(t, err)
	_, err = store.Merge(ctx, tx, winSvc, loseSvc, "оператор")
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))

	reg := prometheus.NewRegistry()
	srv := api.New(api.Options{Catalog: store, Logger: slog.New(slog.DiscardHandler), Gatherer: reg, Registerer: reg})
	for path, want := range map[string]string{
		"/organizations/" + loseOrg.String(): "/organizations/" + winOrg.String(),
		"/services/" + loseSvc.String():      "/services/" + winSvc.String(),
	} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		require.Equal(t, http.StatusMovedPermanently, rec.Code, path)
		require.Equal(t, want, rec.Header().Get("Location"))
		rec = httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, want, nil))
		require.Equal(t, http.StatusOK, rec.Code, want)
	}
}
