package cases_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/cases"
	"socialhub/internal/metrics"
)

func TestRouting(t *testing.T) {
	t.Parallel()
	rules, err := cases.DefaultRules()
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		cats            []string
		district, okrug string
		want            string
	}{
		"district centre":                 {[]string{"social-service-centre"}, "Марьино", "ЮВАО", "tcso-marino"},
		"okrug centres elsewhere":         {[]string{"social-service-centre"}, "Люблино", "ЮВАО", "tcso-yuvao"},
		"category beats district":         {[]string{"employment"}, "Марьино", "ЮВАО", "czn-moya-rabota"},
		"any service: the okrug's office": {[]string{"cooling-rooms"}, "Арбат", "ЦАО", "uszn-cao"},
		"care homes: the coordination":    {[]string{"care-homes"}, "Люблино", "ЮВАО", "care-homes-coordination"},
	} {
		r, ok := rules.Route(tc.cats, tc.district, tc.okrug)
		require.True(t, ok, name)
		require.Equal(t, tc.want, r.Organization, name)
	}

	// An override routes a district elsewhere.
	rules, err = cases.DefaultRules(cases.RulesSource{Name: "override.yaml", Data: []byte(`
organizations: [{id: tcso-lublino, name: ГБУ ТЦСО «Люблино»}]
routes: [{categories: [social-service-centre], districts: [р-н Люблино], organization: tcso-lublino}]
`)})
	require.NoError(t, err)
	r, _ := rules.Route([]string{"social-service-centre"}, "Люблино", "ЮВАО")
	require.Equal(t, "tcso-lublino", r.Organization)

	// Rules are validated on load, every problem named.
	_, err = cases.DefaultRules(cases.RulesSource{Name: "bad.yaml", Data: []byte(`
routes:
  - {categories: [no-such-term], districts: [Атлантида], organization: nobody}
  - {categories: ["*"], districts: [Марьино], okrugs: [ЮВАО], organization: uszn-cao}
channel_exclusions: [{channels: [fax], categories: [care-homes], reason: ""}]
deadlines: [{status: closed, days: 3}, {status: received, days: 0}]
`)})
	require.ErrorIs(t, err, cases.ErrInvalidRules)
	for _, want := range []string{"no-such-term", "Атлантида", `"nobody"`, "not both", `"fax"`, "reason is required", "ends a case", "days must be positive"} {
		require.ErrorContains(t, err, want)
	}
	_, err = cases.LoadRules(cases.RulesSource{Name: "twice.json", Data: []byte(`{"organizations": [{"id": "a", "name": "А"}, {"id": "b", "name": "Б"}],
		"routes": [{"categories": ["*"], "organization": "a"}, {"categories": ["*"], "organization": "b"}]}`)})
	require.ErrorContains(t, err, "both route")
}

func TestApplicationsByRule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.addResident(t, snils, "Люблино", "ЮВАО", false)
	resident := map[string]any{"pseudonym": p}

	code, out := b.apply(t, "Социальное обслуживание на дому", cases.ChannelWeb, resident)
	require.Equal(t, http.StatusCreated, code, out)
	require.Equal(t, "tcso-yuvao", out["organization"].(map[string]any)["id"])

	// Excluded from the phone: 422 with the reason, and nothing recorded.
	code, out = b.apply(t, "Устройство в дом-интернат", cases.ChannelPhone, resident)
	require.Equal(t, http.StatusUnprocessableEntity, code, out)
	require.Contains(t, out["error"], "подаётся лично")
	require.Equal(t, "channel", out["fields"].([]any)[0].(map[string]any)["field"])
	// Through the web it is taken, and routed to the coordination centre.
	code, out = b.apply(t, "Устройство в дом-интернат", cases.ChannelWeb, resident)
	require.Equal(t, http.StatusCreated, code, out)
	require.Equal(t, "care-homes-coordination", out["organization"].(map[string]any)["id"])

	// Not eligible: recorded all the same, the answer names the rule.
	code, out = b.apply(t, "Клуб «Активное долголетие»", cases.ChannelPhone, resident)
	require.Equal(t, http.StatusCreated, code, out)
	el := out["eligibility"].(map[string]any)
	require.Equal(t, false, el["eligible"])
	rule := el["rules"].([]any)[0].(map[string]any)
	require.Equal(t, "active-longevity", rule["rule"])
	require.NotEmpty(t, rule["explanation"])
	require.Equal(t, "2026-000003", out["case_number"])

	// Bad input: field-level 400s; an unknown resident: 422.
	code, out = b.apply(t, "Социальное обслуживание на дому", "pigeon", map[string]any{"national_id": "123"})
	require.Equal(t, http.StatusBadRequest, code, out)
	require.NotContains(t, out["fields"], "123")
	fields := map[string]bool{}
	for _, f := range out["fields"].([]any) {
		fields[f.(map[string]any)["field"].(string)] = true
	}
	require.Equal(t, map[string]bool{"resident.national_id": true, "channel": true}, fields)
	code, out = b.apply(t, "Социальное обслуживание на дому", cases.ChannelWeb, map[string]any{"pseudonym": "ab" + p[2:]})
	require.Equal(t, http.StatusUnprocessableEntity, code, out)
}

func TestDepartmentReadsOnlyItsCases(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	p := b.addResident(t, snils, "Марьино", "ЮВАО", true)
	code, out := b.apply(t, "Социальное обслуживание на дому", cases.ChannelPhone, map[string]any{"pseudonym": p})
	require.Equal(t, http.StatusCreated, code, out)
	id := out["id"].(string)

	code, _ = b.call(t, http.MethodGet, "/v1/applications/"+id, b.yuvao, nil)
	require.Equal(t, http.StatusForbidden, code, "another centre does not read the case")
	code, _ = b.call(t, http.MethodPost, "/v1/applications/"+id+"/events", b.yuvao, event("y-1", cases.StatusReceived, b.clock.Now()))
	require.Equal(t, http.StatusForbidden, code, "nor report on it")
	code, _ = b.call(t, http.MethodGet, "/v1/applications/"+id, b.bot, nil)
	require.Equal(t, http.StatusForbidden, code, "a chat-bot holds no applications:read")
	code, _ = b.call(t, http.MethodPost, "/v1/applications/"+id+"/events", b.operator, event("o-1", cases.StatusReceived, b.clock.Now()))
	require.Equal(t, http.StatusForbidden, code, "the operator does not report statuses")
	code, _ = b.call(t, http.MethodGet, "/v1/applications/"+id, b.marino, nil)
	require.Equal(t, http.StatusOK, code)

	// Every read is audited with the resident and the case; so are the refusals.
	code, _ = b.call(t, http.MethodGet, "/v1/cases/"+out["case_number"].(string), b.bot, nil)
	require.Equal(t, http.StatusOK, code)
	code, _ = b.call(t, http.MethodGet, "/v1/cases/2026-999999", b.bot, nil)
	require.Equal(t, http.StatusNotFound, code)
	rows, err := b.audit.ForSubject(ctx, p, 0, 100)
	require.NoError(t, err)
	var seen []string
	for i := len(rows) - 1; i >= 0; i-- {
		e := rows[i]
		seen = append(seen, e.Action+":"+e.Outcome+":"+e.ClientName)
		require.Equal(t, out["case_number"], e.CaseID)
	}
	require.Equal(t, []string{
		"application_submit:answered:Контакт-центр",
		"case_read:refused:ТЦСО ЮВАО",
		"case_read:answered:ТЦСО «Марьино»",
		"case_status:answered:Чат-бот",
	}, seen)
	head, err := b.audit.Verify(ctx)
	require.NoError(t, err)
	last, err := b.audit.Get(ctx, head.Seq)
	require.NoError(t, err)
	require.Equal(t, "case_status:refused:2026-999999", last.Action+":"+last.Outcome+":"+last.CaseID)
}

func TestOverdue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.addResident(t, snils, "Марьино", "ЮВАО", true)
	_, first := b.apply(t, "Социальное обслуживание на дому", cases.ChannelPhone, map[string]any{"pseudonym": p})
	b.clock.Add(12 * time.Hour)
	_, second := b.apply(t, "Социальное обслуживание на дому", cases.ChannelPhone, map[string]any{"pseudonym": p})
	code, _ := b.call(t, http.MethodPost, "/v1/applications/"+second["id"].(string)+"/events", b.marino,
		event("m-1", cases.StatusReceived, b.clock.Now()))
	require.Equal(t, http.StatusOK, code)

	m := metrics.New()
	w := cases.NewWatcher(b.store, m, time.Hour, discard())
	list := func() []any {
		t.Helper()
		code, out := b.call(t, http.MethodGet, "/v1/applications?overdue=true", b.operator, nil)
		require.Equal(t, http.StatusOK, code, out)
		return out["cases"].([]any)
	}
	require.Empty(t, list())
	// A day after filing the first is overdue at «submitted» (1 day); the second, received, has 3.
	b.clock.Add(13 * time.Hour)
	got := list()
	require.Len(t, got, 1)
	require.Equal(t, first["case_number"], got[0].(map[string]any)["case_number"])
	require.Equal(t, cases.StatusSubmitted, got[0].(map[string]any)["status"])
	require.NoError(t, w.Count(context.Background()))
	require.InDelta(t, 1, gauge(t, m, ("tcso-marino")), 0)
	require.InDelta(t, 0, gauge(t, m, ("tcso-yuvao")), 0)

	b.clock.Add(3 * 24 * time.Hour)
	require.Len(t, list(), 2)
	// The centre sees its own; the other centre sees none of them and may not ask for them.
	code, out := b.call(t, http.MethodGet, "/v1/applications?overdue=true", b.marino, nil)
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 2, out["count"])
	code, out = b.call(t, http.MethodGet, "/v1/applications?overdue=true", b.yuvao, nil)
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 0, out["count"])
	code, _ = b.call(t, http.MethodGet, "/v1/applications?overdue=true&organization=tcso-marino", b.yuvao, nil)
	require.Equal(t, http.StatusForbidden, code)
	code, _ = b.call(t, http.MethodGet, "/v1/applications", b.operator, nil)
	require.Equal(t, http.StatusBadRequest, code)

	// Closing a case stops its clock.
	code, _ = b.call(t, http.MethodPost, "/v1/applications/"+first["id"].(string)+"/events", b.marino,
		event("m-9", cases.StatusRefused, b.clock.Now()))
	require.Equal(t, http.StatusOK, code)
	require.Len(t, list(), 1)
	require.NoError(t, w.Count(context.Background()))
	require.InDelta(t, 1, gauge(t, m, ("tcso-marino")), 0)
}

func gauge(t *testing.T, m *metrics.Metrics, org string) float64 {
	t.Helper()
	var out dto.Metric
	require.NoError(t, m.ApplicationsOverdue.WithLabelValues(org).Write(&out))
	return out.GetGauge().GetValue()
}
