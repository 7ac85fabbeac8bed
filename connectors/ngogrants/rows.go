package ngogrants

import (
	"bytes"
	stdcsv "encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"socialhub/connectors"
	"socialhub/connectors/fetch"
)

// rowReader gives a list's rows one at a time, io.EOF after the last.
type rowReader interface {
	next() ([]string, error)
	close() error
}

// zipMagic starts every XLSX file (an Office Open XML package is a zip archive).
var zipMagic = []byte("PK\x03\x04")

// newRowReader opens raw as the configured format.
func newRowReader(raw []byte, o *Options) (rowReader, string, error) {
	format := o.Format
	if format == FormatAuto {
		format = FormatCSV
		if bytes.HasPrefix(raw, zipMagic) {
			format = FormatXLSX
		}
	}
	if format == FormatXLSX {
		r, err := newXLSXReader(raw, o.Sheet)
		return r, format, err
	}
	if bytes.HasPrefix(raw, zipMagic) {
		return nil, format, fmt.Errorf("%w: format is csv but the content is a zip archive (an XLSX file?); set format: xlsx or auto", connectors.ErrBadOptions)
	}
	text, err := fetch.DecodeText(raw, o.Encoding)
	if err != nil {
		return nil, format, fmt.Errorf("error decoding the list: %w", err)
	}
	return newCSVReader(text, o.Delimiter), format, nil
}

type csvReader struct{ r *stdcsv.Reader }

func newCSVReader(text []byte, delimiter string) *csvReader {
	r := stdcsv.NewReader(bytes.NewReader(text))
	if delimiter == "" {
		r.Comma = sniffDelimiter(text)
	} else {
		r.Comma, _ = utf8.DecodeRuneInString(delimiter)
	}
	r.FieldsPerRecord = -1 // a short row is read as it is: its missing cells are empty
	r.LazyQuotes = true
	r.ReuseRecord = true
	return &csvReader{r: r}
}

func (c *csvReader) next() ([]string, error) {
	cells, err := c.r.Read()
	if err != nil && !errors.Is(err, io.EOF) {
		line, _ := c.r.FieldPos(0)
		return nil, fmt.Errorf("error reading CSV near line %d: %w", line, err)
	}
	return cells, err
}

func (c *csvReader) close() error { return nil }

// sniffDelimiter picks the delimiter the first line uses most: Russian Excel writes ";", other
// tools "," or tab.
func sniffDelimiter(text []byte) rune {
	line := text
	if i := bytes.IndexByte(text, '\n'); i >= 0 {
		line = text[:i]
	}
	best, n := ';', bytes.Count(line, []byte(";"))
	for _, d := range []rune{',', '\t'} {
		if c := bytes.Count(line, []byte(string(d))); c > n {
			best, n = d, c
		}
	}
	return best
}

// xlsxReader streams a sheet's rows: excelize reads the sheet's XML as it goes instead of building
// the whole grid.
type xlsxReader struct {
	f    *excelize.File
	rows *excelize.Rows
}

func newXLSXReader(raw []byte, sheet string) (*xlsxReader, error) {
	f, err := excelize.OpenReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("error opening the XLSX workbook: %w", err)
	}
	sheets := f.GetSheetList()
	if sheet == "" {
		if len(sheets) == 0 {
			_ = f.Close()
			return nil, fmt.Errorf("%w: the workbook has no sheets", ErrNoSheet)
		}
		sheet = sheets[0]
	}
	rows, err := f.Rows(sheet)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %w %q; the workbook has: %s", connectors.ErrBadOptions, ErrNoSheet, sheet, strings.Join(sheets, ", "))
	}
	return &xlsxReader{f: f, rows: rows}, nil
}

func (x *xlsxReader) next() ([]string, error) {
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			return nil, fmt.Errorf("error reading the XLSX sheet: %w", err)
		}
		return nil, io.EOF
	}
	// Raw values: a date is its serial number and an amount its plain number, not whatever the
	// cell's display format makes of them («03-01-24», «2,000,000»).
	cells, err := x.rows.Columns(excelize.Options{RawCellValue: true})
	if err != nil {
		return nil, fmt.Errorf("error reading the XLSX sheet: %w", err)
	}
	return cells, nil
}

func (x *xlsxReader) close() error {
	err := x.rows.Close()
	if cerr := x.f.Close(); err == nil {
		err = cerr
	}
	return err
}
