package ngogrants_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	stdcsv "encoding/csv"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/charmap"

	"socialhub/connectors"
	"socialhub/connectors/connectortest"
	"socialhub/connectors/ngogrants"
	"socialhub/internal/demo"
	"socialhub/internal/event"
	"socialhub/schemas"
)

const header = "Номер заявки;ИНН;ОГРН;Наименование организации;Регион;Название проекта;Сумма гранта;Дата начала;Дата окончания;Статус\n"

// messRows holds what real lists do: HTML entities (their «;» makes a proper exporter quote the
// field), line breaks and runs of spaces in fields,
// amounts with (non-breaking) spaces, dots and «руб.», dates three ways, broken identifiers.
const messRows = "24-1-000001;7707083893;1027700132195;\"АНО &quot;Рядом&quot;\";г. Москва;\"Серебряный\nволонтёр\";2\u00a0000\u00a0000,00;01.03.2024;28.02.2025;реализуется\n" +
	"24-1-000002;7707083893;1027700132195;\"АНО   &laquo;Рядом&raquo;\";Москва;Школа  медиации;1.500.000;2024-03-01;45716;завершён\n" +
	"24-1-000003;7707083894;1027700132195;АНО «Опечатка»;г. Москва;Проект;100 000,00;01.03.2024;;реализуется\n" +
	"24-1-000004;7736207543;1027700229194;АНО «Опечатка в ОГРН»;г. Москва;Проект;100 000,00;01.03.2024;;реализуется\n" +
	";7736207543;1027700229193;АНО «Без номера»;г. Москва;Проект;100 000,00;01.03.2024;;реализуется\n" +
	"24-1-000001;7736207543;1027700229193;АНО «Тот же номер»;г. Москва;Проект;100 000,00;01.03.2024;;реализуется\n" +
	"24-1-000007;500100732259;304500116000157;ИП Иванов Иван Иванович;г. Москва;Мастерская;1500000.5;01.03.2024;31.12.2024;реализуется\n" +
	"24-1-000008;7707083893;;АНО «Рядом»;Московская область;Выездной лагерь;250\u202f000,00 руб.;01.06.2024;31.08.2024;реализуется\n" +
	"24-1-000009;7736207543;1027700229193;;г. Москва;Без имени;300 000;01.03.2024;31.12.2024;реализуется\n" +
	"24-1-000010;7736207543;1027700229193;ООО «Яндекс»;г. Москва;Проект;два миллиона;01.03.2024;31.12.2024;реализуется\n" +
	"24-1-000011;7736207543;1027700229193;ООО «Яндекс»;г. Москва;Проект;100,00;31.02.2024;31.12.2024;реализуется\n" +
	"\n"

func doc(t *testing.T, r connectors.Record) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Data, &m))
	return m
}

func grant(t *testing.T, r connectors.Record) map[string]any {
	t.Helper()
	f := doc(t, r)["funding"].([]any)
	require.Len(t, f, 1)
	return f[0].(map[string]any)
}

func TestMessyList(t *testing.T) {
	t.Parallel()
	content := append([]byte("\xef\xbb\xbf"), header+messRows...)
	recs := connectortest.ReadAll(t, source(t, map[string]any{"path": writeFile(t, "list.csv", content), "operator": "Фонд президентских грантов"}), nil)
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ExternalID
		require.Equal(t, schemas.EntityOrganization, r.EntityType)
		require.Equal(t, event.OpUpsert, r.Op)
	}
	require.Equal(t, []string{"24-1-000001", "24-1-000002", "24-1-000003", "24-1-000004", "row-5", "24-1-000001#row-6",
		"24-1-000007", "24-1-000008", "24-1-000009", "24-1-000010", "24-1-000011"}, ids, "the blank line is skipped")
	got := byID(recs)

	first := doc(t, got["24-1-000001"])
	require.Equal(t, "inn-7707083893", first["id"])
	require.Equal(t, `АНО "Рядом"`, first["name"], "HTML entities decoded")
	require.Equal(t, []any{
		map[string]any{"id": "inn-7707083893/INN", "identifier_scheme": "INN", "identifier_type": "ИНН", "identifier": "7707083893"},
		map[string]any{"id": "inn-7707083893/OGRN", "identifier_scheme": "OGRN", "identifier_type": "ОГРН", "identifier": "1027700132195"},
	}, first["organization_identifiers"])
	require.Equal(t, map[string]any{
		"id": "24-1-000001", "organization_id": "inn-7707083893",
		"source": "Фонд президентских грантов: Серебряный волонтёр",
		"amount": "2000000.00", "currency": "RUB", "application_number": "24-1-000001",
		"project_title": "Серебряный волонтёр", "operator": "Фонд президентских грантов",
		"start_date": "2024-03-01", "end_date": "2025-02-28", "status": "реализуется", "region": "г. Москва",
	}, grant(t, got["24-1-000001"]), "a line break in a field becomes a space")

	require.Equal(t, "АНО «Рядом»", doc(t, got["24-1-000002"])["name"], "runs of spaces collapsed, &laquo; decoded")
	g2 := grant(t, got["24-1-000002"])
	require.Equal(t, "1500000.00", g2["amount"])
	require.Equal(t, "Школа медиации", g2["project_title"])
	require.Equal(t, "2024-03-01", g2["start_date"])
	require.Equal(t, "2025-02-28", g2["end_date"], "an Excel serial date")

	reasons := func(id string) []event.Reason { return got[id].Reasons }
	require.Equal(t, "organization_identifiers.0.identifier", reasons("24-1-000003")[0].Field)
	require.Contains(t, reasons("24-1-000003")[0].Message, "control digit")
	require.Equal(t, "organization_identifiers.1.identifier", reasons("24-1-000004")[0].Field)
	require.Equal(t, "funding.0.application_number", reasons("row-5")[0].Field)
	require.Equal(t, "funding.0.application_number", reasons("24-1-000001#row-6")[0].Field)
	require.Contains(t, reasons("24-1-000001#row-6")[0].Message, "already used by data row 1")
	require.Equal(t, "funding.0.amount", reasons("24-1-000010")[0].Field)
	require.Equal(t, "funding.0.start_date", reasons("24-1-000011")[0].Field)
	require.Contains(t, reasons("24-1-000011")[0].Message, "01.03.2024")
	// A rejected record carries what was read, for the operator.
	var raw map[string]any
	require.NoError(t, json.Unmarshal(got["24-1-000003"].Data, &raw))
	require.Equal(t, "7707083894", raw["inn"])
	require.Equal(t, float64(3), raw["row"])

	ip := doc(t, got["24-1-000007"])
	require.Equal(t, "inn-500100732259", ip["id"])
	require.Equal(t, "OGRNIP", ip["organization_identifiers"].([]any)[1].(map[string]any)["identifier_scheme"])
	require.Equal(t, "1500000.50", grant(t, got["24-1-000007"])["amount"])
	require.Equal(t, "250000.00", grant(t, got["24-1-000008"])["amount"], "narrow NBSP and «руб.»")
	require.Len(t, doc(t, got["24-1-000008"])["organization_identifiers"], 1, "no OGRN given")

	// What the source lets through, the profile judges: only the nameless row fails, on its name.
	v, err := schemas.NewValidator()
	require.NoError(t, err)
	for _, r := range recs {
		if r.Reasons != nil {
			continue
		}
		violations, err := v.Validate(r.EntityType, r.Data)
		require.NoError(t, err)
		if r.ExternalID == "24-1-000009" {
			require.Equal(t, "name", violations[0].Field)
			continue
		}
		require.Empty(t, violations, "%s: %s", r.ExternalID, r.Data)
	}
}

func TestRegionsFilter(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "list.csv", []byte(header+messRows))
	recs := connectortest.ReadAll(t, source(t, map[string]any{"path": path, "regions": []string{"Город Москва"}}), nil)
	require.Len(t, recs, 10)
	require.NotContains(t, byID(recs), "24-1-000008", "Московская область is not the city's")
	_, err := ngogrants.New(options(t, map[string]any{"path": path, "regions": []string{"Москва"},
		"columns": map[string]any{"application_number": "Номер заявки", "inn": "ИНН", "organization_name": "Наименование организации"}}), connectors.Deps{})
	require.ErrorIs(t, err, connectors.ErrBadOptions)
	require.ErrorContains(t, err, "columns.region")
}

func TestEncodingsAndDelimiters(t *testing.T) {
	t.Parallel()
	text := header + messRows
	cp, err := charmap.Windows1251.NewEncoder().Bytes([]byte(strings.NewReplacer("\u202f", " ").Replace(text)))
	require.NoError(t, err)
	comma := strings.ReplaceAll(strings.ReplaceAll(text, ",", "."), ";", ",")
	for name, tc := range map[string]struct {
		content []byte
		opts    map[string]any
	}{
		"utf-8 with BOM":          {append([]byte("\xef\xbb\xbf"), text...), nil},
		"utf-8 without BOM":       {[]byte(text), map[string]any{"encoding": "utf-8"}},
		"windows-1251 auto":       {cp, nil},
		"windows-1251 explicit":   {cp, map[string]any{"encoding": "windows-1251", "delimiter": ";", "format": "csv"}},
		"comma delimiter sniffed": {[]byte(comma), nil},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			opts := map[string]any{"path": writeFile(t, "list.csv", tc.content)}
			for k, v := range tc.opts {
				opts[k] = v
			}
			recs := connectortest.ReadAll(t, source(t, opts), nil)
			require.Len(t, recs, 11)
			require.Equal(t, "Серебряный волонтёр", grant(t, recs[0])["project_title"])
		})
	}
	src := source(t, map[string]any{"path": writeFile(t, "list.csv", cp), "encoding": "utf-8"})
	require.ErrorContains(t, src.Open(context.Background(), nil), "windows-1251")
}

func TestHeaderless(t *testing.T) {
	t.Parallel()
	src := source(t, map[string]any{
		"path":   writeFile(t, "list.csv", []byte("Москва,7707083893,24-1-1,\"АНО \"\"Рядом\"\"\",\"1 000,00\"\nМосква,7736207543,24-1-2,ООО «Яндекс»,500\n")),
		"header": false, "delimiter": ",",
		"columns": map[string]any{"region": "1", "inn": "2", "application_number": "3", "organization_name": "4", "amount": "5", "status": "9"},
	})
	recs := connectortest.ReadAll(t, src, nil)
	require.Len(t, recs, 2)
	require.Equal(t, `АНО "Рядом"`, doc(t, recs[0])["name"])
	require.Equal(t, "1000.00", grant(t, recs[0])["amount"])
	require.NotContains(t, grant(t, recs[1]), "status", "a column past the row's end is empty")

	_, err := ngogrants.New(options(t, map[string]any{"path": "x", "header": false,
		"columns": map[string]any{"application_number": "Номер", "inn": "2", "organization_name": "3"}}), connectors.Deps{})
	require.ErrorIs(t, err, connectors.ErrBadOptions)
	require.ErrorContains(t, err, "column number")
}

func TestMissingColumnNamesTheMapping(t *testing.T) {
	t.Parallel()
	src := source(t, map[string]any{"path": writeFile(t, "list.csv", []byte("Номер заявки;ИНН;Наименование организации;Сумма\n1;7707083893;x;1\n"))})
	err := src.Open(context.Background(), nil)
	require.ErrorIs(t, err, connectors.ErrBadOptions)
	require.ErrorContains(t, err, `columns.amount = "Сумма гранта"`)
	require.ErrorContains(t, err, "Номер заявки | ИНН")

	src = source(t, map[string]any{"path": writeFile(t, "list.csv", []byte("Код;Название\n1;x\n"))})
	err = src.Open(context.Background(), nil)
	require.ErrorIs(t, err, connectors.ErrBadOptions)
	require.ErrorContains(t, err, "no header row names")

	// An empty list is an empty run, not an error.
	require.Empty(t, connectortest.ReadAll(t, source(t, map[string]any{"path": writeFile(t, "list.csv", nil)}), nil))
}

func TestBadOptions(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]map[string]any{
		"no path or url":   {},
		"both":             {"path": "a", "url": "https://x"},
		"bad scheme":       {"url": "ftp://x"},
		"bad format":       {"path": "a", "format": "ods"},
		"bad encoding":     {"path": "a", "encoding": "koi8-r"},
		"long delimiter":   {"path": "a", "delimiter": ";;"},
		"quote delimiter":  {"path": "a", "delimiter": `"`},
		"unknown option":   {"path": "a", "sheets": "x"},
		"no inn column":    {"path": "a", "columns": map[string]any{"application_number": "a", "organization_name": "b"}},
		"bearer no env":    {"url": "https://x", "auth": map[string]any{"type": "bearer"}},
		"negative timeout": {"path": "a", "timeout": "-1s"},
	} {
		_, err := ngogrants.New(options(t, opts), connectors.Deps{Getenv: func(string) string { return "" }})
		require.ErrorIs(t, err, connectors.ErrBadOptions, name)
	}
}

func TestXLSX(t *testing.T) {
	t.Parallel()
	raw, man := demoXLSX(t, demo.GrantsOptions{Seed: 3})
	path := writeFile(t, "list.xlsx", raw)
	recs := connectortest.ReadAll(t, source(t, map[string]any{"path": path, "operator": "Фонд президентских грантов"}), nil)
	checkAgainstManifest(t, recs, man)

	// The same, named explicitly; and a sheet that is not there.
	require.Len(t, connectortest.ReadAll(t, source(t, map[string]any{"path": path, "format": "xlsx", "sheet": "Победители"}), nil), len(recs))
	err := source(t, map[string]any{"path": path, "sheet": "Лист2"}).Open(context.Background(), nil)
	require.ErrorIs(t, err, ngogrants.ErrNoSheet)
	require.ErrorContains(t, err, "Победители")
	// A workbook read as CSV is refused with the fix.
	err = source(t, map[string]any{"path": path, "format": "csv"}).Open(context.Background(), nil)
	require.ErrorIs(t, err, connectors.ErrBadOptions)
	// Not a workbook at all.
	err = source(t, map[string]any{"path": writeFile(t, "x.xlsx", []byte("PK\x03\x04garbage")), "format": "xlsx"}).Open(context.Background(), nil)
	require.ErrorContains(t, err, "XLSX")
}

// TestXLSXSheetAndTypedCells: a list on the second sheet, with identifiers and amounts stored as
// numbers and dates as date cells.
func TestXLSXSheetAndTypedCells(t *testing.T) {
	t.Parallel()
	f := excelize.NewFile()
	defer f.Close()
	_, err := f.NewSheet("2024")
	require.NoError(t, err)
	dateStyle, err := f.NewStyle(&excelize.Style{NumFmt: 14})
	require.NoError(t, err)
	require.NoError(t, f.SetSheetRow("Sheet1", "A1", &[]any{"Прошлогодний список"}))
	require.NoError(t, f.SetSheetRow("2024", "A1", &[]any{"Номер заявки", "ИНН", "ОГРН", "Наименование\nорганизации", "Регион",
		"Название проекта", "Сумма гранта", "Дата начала", "Дата окончания", "Статус"}))
	require.NoError(t, f.SetSheetRow("2024", "A2", &[]any{"24-1-1", 7707083893, 1027700132195, "АНО «Рядом»", "г. Москва",
		"Проект", 2000000.5, nil, nil, "реализуется"}))
	require.NoError(t, f.SetCellValue("2024", "H2", mustDate(t, "2024-03-01")))
	require.NoError(t, f.SetCellValue("2024", "I2", mustDate(t, "2025-02-28")))
	require.NoError(t, f.SetCellStyle("2024", "H2", "I2", dateStyle))
	require.NoError(t, f.SetSheetRow("2024", "A3", &[]any{"24-1-2", "7.736207543E+9", "1027700229193", "ООО «Яндекс»", "г. Москва",
		"Проект", "1 000 000,00 ₽", "2024-03-01", "45716", "завершён"}))
	var buf bytes.Buffer
	require.NoError(t, f.Write(&buf))
	recs := connectortest.ReadAll(t, source(t, map[string]any{"path": writeFile(t, "list.xlsx", buf.Bytes()), "sheet": "2024"}), nil)
	require.Len(t, recs, 2)
	require.Nil(t, recs[0].Reasons, "%v", recs[0].Reasons)
	g := grant(t, recs[0])
	require.Equal(t, "2000000.50", g["amount"])
	require.Equal(t, "2024-03-01", g["start_date"])
	require.Equal(t, "2025-02-28", g["end_date"])
	require.Equal(t, "inn-7707083893", doc(t, recs[0])["id"])
	require.Nil(t, recs[1].Reasons, "%v", recs[1].Reasons)
	require.Equal(t, "inn-7736207543", doc(t, recs[1])["id"], "an identifier in exponent notation read exactly")
	require.Equal(t, "1000000.00", grant(t, recs[1])["amount"])
}

func TestDemoCSVWindows1251(t *testing.T) {
	t.Parallel()
	raw, man := demoCSV(t, demo.GrantsOptions{Seed: 9})
	recs := connectortest.ReadAll(t, source(t, map[string]any{"path": writeFile(t, "list.csv", raw)}), nil)
	checkAgainstManifest(t, recs, man)
}

// checkAgainstManifest: every row is read; the rows the demo breaks on a checksum are rejected at
// the source; the others validate, except the broken ones, which fail on their documented field.
func checkAgainstManifest(t *testing.T, recs []connectors.Record, man demo.GrantsManifest) {
	t.Helper()
	require.Len(t, recs, len(man.Valid)+len(man.Broken))
	v, err := schemas.NewValidator()
	require.NoError(t, err)
	broken := map[string]string{}
	for _, b := range man.Broken {
		broken[b.ID] = b.Field
	}
	var rejected []string
	for _, r := range recs {
		if r.Reasons != nil {
			rejected = append(rejected, r.ExternalID)
			require.Equal(t, broken[r.ExternalID], r.Reasons[0].Field, r.ExternalID)
			continue
		}
		violations, err := v.Validate(r.EntityType, r.Data)
		require.NoError(t, err)
		if field, ok := broken[r.ExternalID]; ok {
			require.Len(t, violations, 1, r.ExternalID)
			require.Equal(t, field, violations[0].Field, r.ExternalID)
			continue
		}
		require.Empty(t, violations, "%s: %s", r.ExternalID, r.Data)
	}
	require.Equal(t, man.Rejected, rejected)
}

func mustDate(t *testing.T, s string) any {
	t.Helper()
	d, err := timeParse(s)
	require.NoError(t, err)
	return d
}

// TestHTTPWithETag: a list read to its end is asked for again with its ETag; the 304 reads no
// record and claims no snapshot. A run cut short asks unconditionally, to finish the list.
func TestHTTPWithETag(t *testing.T) {
	t.Parallel()
	raw, _ := demoXLSX(t, demo.GrantsOptions{Seed: 4, Rows: 10, Broken: -1})
	var conditional, notModified atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") != "" {
			conditional.Add(1)
		}
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		_, _ = w.Write(raw)
	}))
	defer srv.Close()
	src := source(t, map[string]any{"url": srv.URL})
	recs := connectortest.ReadAll(t, src, nil)
	require.Len(t, recs, 10)
	sum := sha256.Sum256(raw)
	require.Equal(t, hex.EncodeToString(sum[:]), src.SnapshotID())

	// Restart mid-run: the rest is read, from a fresh, unconditional fetch.
	rest := connectortest.ReadAll(t, source(t, map[string]any{"url": srv.URL}), recs[3].Position)
	require.Len(t, rest, 6)
	require.Equal(t, recs[4].ExternalID, rest[0].ExternalID)
	require.Zero(t, conditional.Load())

	again := source(t, map[string]any{"url": srv.URL})
	require.Empty(t, connectortest.ReadAll(t, again, recs[9].Position))
	require.Equal(t, int32(1), notModified.Load())
	require.Empty(t, again.SnapshotID(), "a 304 run read no list")
}

func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	err := source(t, map[string]any{"url": down.URL}).Open(context.Background(), nil)
	require.ErrorIs(t, err, connectors.ErrBackoffRetry)
	missing := httptest.NewServer(http.NotFoundHandler())
	defer missing.Close()
	err = source(t, map[string]any{"url": missing.URL}).Open(context.Background(), nil)
	require.Error(t, err)
	require.NotErrorIs(t, err, connectors.ErrBackoffRetry)
}

func TestChangedListStartsOver(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "list.csv", []byte(header+messRows))
	first := connectortest.ReadAll(t, source(t, map[string]any{"path": path}), nil)
	require.NoError(t, os.WriteFile(path, []byte(header+strings.Replace(messRows, "Школа  медиации", "Школа семейной медиации", 1)), 0o600))
	second := connectortest.ReadAll(t, source(t, map[string]any{"path": path}), first[4].Position)
	require.Len(t, second, len(first), "another list is read whole")
	require.Equal(t, "Школа семейной медиации", grant(t, second[1])["project_title"])
}

// shrinkCSV drops rows of a Windows-1251 demo list and returns their application numbers.
func shrinkCSV(t *testing.T, raw []byte, drop []string) []byte {
	t.Helper()
	text, err := charmap.Windows1251.NewDecoder().Bytes(raw)
	require.NoError(t, err)
	r := stdcsv.NewReader(bytes.NewReader(text))
	r.Comma = ';'
	rows, err := r.ReadAll()
	require.NoError(t, err)
	var out bytes.Buffer
	w := stdcsv.NewWriter(charmap.Windows1251.NewEncoder().Writer(&out))
	w.Comma = ';'
	for _, row := range rows {
		if !slices.Contains(drop, row[0]) {
			require.NoError(t, w.Write(row))
		}
	}
	w.Flush()
	require.NoError(t, w.Error())
	return out.Bytes()
}

// shrinkXLSX drops rows of a demo workbook.
func shrinkXLSX(t *testing.T, raw []byte, drop []string) []byte {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(raw))
	require.NoError(t, err)
	defer f.Close()
	rows, err := f.GetRows("Победители")
	require.NoError(t, err)
	for i := len(rows) - 1; i >= 0; i-- {
		if len(rows[i]) > 0 && slices.Contains(drop, rows[i][0]) {
			require.NoError(t, f.RemoveRow("Победители", i+1))
		}
	}
	var buf bytes.Buffer
	require.NoError(t, f.Write(&buf))
	return buf.Bytes()
}

func TestAcceptanceCSVFile(t *testing.T) {
	t.Parallel()
	raw, man := demoCSV(t, demo.GrantsOptions{Seed: 2, Rows: 30})
	path := writeFile(t, "list.csv", raw)
	connectortest.Run(t, connectortest.Fixture{
		New:      func(t *testing.T) connectors.Source { return source(t, map[string]any{"path": path}) },
		Want:     len(man.Valid) + len(man.Broken),
		Rejected: len(man.Rejected),
		Shrink: func(t *testing.T) []string {
			gone := []string{man.Valid[0], man.Valid[7], man.Valid[len(man.Valid)-1]}
			require.NoError(t, os.WriteFile(path, shrinkCSV(t, raw, gone), 0o600))
			return gone
		},
		Break: func(t *testing.T) { require.NoError(t, os.Remove(path)) },
	})
}

func TestAcceptanceXLSXOverHTTP(t *testing.T) {
	t.Parallel()
	raw, man := demoXLSX(t, demo.GrantsOptions{Seed: 2, Rows: 30})
	var mu sync.Mutex
	body, broken := raw, false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		b, down := body, broken
		mu.Unlock()
		if down {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		sum := sha256.Sum256(b)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	connectortest.Run(t, connectortest.Fixture{
		New: func(t *testing.T) connectors.Source {
			return source(t, map[string]any{"url": srv.URL, "rate_limit": -1})
		},
		Want:     len(man.Valid) + len(man.Broken),
		Rejected: len(man.Rejected),
		Shrink: func(t *testing.T) []string {
			gone := []string{man.Valid[1], man.Valid[len(man.Valid)/2]}
			shrunk := shrinkXLSX(t, raw, gone)
			mu.Lock()
			body = shrunk
			mu.Unlock()
			return gone
		},
		Break: func(t *testing.T) {
			mu.Lock()
			broken = true
			mu.Unlock()
		},
	})
}

func FuzzList(f *testing.F) {
	f.Add([]byte(header + messRows))
	f.Add([]byte("Номер заявки;ИНН;Наименование организации\n\"a;b\n"))
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		src := source(t, map[string]any{"path": writeFile(t, "f", b), "columns": map[string]any{
			"application_number": "Номер заявки", "inn": "ИНН", "organization_name": "Наименование организации", "amount": "Сумма гранта"}})
		ctx := context.Background()
		if err := src.Open(ctx, nil); err != nil {
			return
		}
		defer src.Close(ctx)
		for range 10000 {
			r, err := src.Read(ctx)
			if err != nil {
				return
			}
			require.True(t, json.Valid(r.Data))
			require.NotEmpty(t, r.ExternalID)
		}
	})
}
