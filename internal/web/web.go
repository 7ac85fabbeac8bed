package web

import (
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"socialhub/internal/clients"
	"socialhub/internal/jsonhttp"
	"socialhub/schemas"
)

// Paths of the front ends.
const (
	NavigatorPath = "/navigator/"
	ConsolePath   = "/console/"
)

// Tile sources.
const (
	// DefaultTileURL is OpenStreetMap's standard tile layer.
	DefaultTileURL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
	// DefaultTileAttribution is what OpenStreetMap's tile usage policy asks to show.
	DefaultTileAttribution = "© участники OpenStreetMap"
	// TilesOff turns the tile layer off: the map shows the markers on a plain background.
	TilesOff = "off"
)

// The page assets: HTML, scripts and styles, no build step.
//
//go:embed assets
var assetsFS embed.FS

// Options configures the front ends.
type Options struct {
	// Stats records the navigator's searches; nil leaves the analytics routes unmounted.
	Stats *Stats
	// Guard authenticates operators for GET /v1/whoami; nil leaves the route unmounted.
	Guard *clients.Guard
	// TileURL is the map's tile template with {z}, {x}, {y} (and optionally {s}); empty means
	// DefaultTileURL, TilesOff no tiles.
	TileURL string
	// TileAttribution is shown on the map; empty means DefaultTileAttribution for the default
	// tiles and nothing for others.
	TileAttribution string
	Logger          *slog.Logger
}

// Handler serves the pages, their configuration and the analytics.
type Handler struct {
	opts   Options
	log    *slog.Logger
	files  http.Handler
	config []byte
	csp    string
}

// New returns the handler. It fails on a tile URL that is not an absolute http(s) template.
func New(opts Options) (*Handler, error) {
	if opts.TileURL == "" {
		opts.TileURL = DefaultTileURL
		if opts.TileAttribution == "" {
			opts.TileAttribution = DefaultTileAttribution
		}
	}
	h := &Handler{opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	imgSrc := "'self' data:"
	tiles := ""
	if opts.TileURL != TilesOff {
		u, err := url.Parse(strings.NewReplacer("{s}", "a", "{z}", "0", "{x}", "0", "{y}", "0").Replace(opts.TileURL))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.Contains(opts.TileURL, "{z}") {
			return nil, errors.New("web: the tile URL must be an absolute http(s) URL template with {z}, {x} and {y}, or \"off\"")
		}
		tiles = opts.TileURL
		// The tile host, with every {s} subdomain: the page may load images from there only.
		host := u.Scheme + "://" + u.Host
		if strings.Contains(opts.TileURL, "{s}") {
			host = u.Scheme + "://*." + strings.SplitN(u.Host, ".", 2)[1]
		}
		imgSrc += " " + host
	}
	h.csp = "default-src 'self'; img-src " + imgSrc + "; style-src 'self'; script-src 'self'; connect-src 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	cfg, err := json.Marshal(pageConfig{TileURL: tiles, TileAttribution: opts.TileAttribution,
		Taxonomy: schemas.Taxonomy(), Okrugs: schemas.Okrugs(), Districts: districts()})
	if err != nil {
		return nil, err
	}
	h.config = cfg
	root, err := fs.Sub(assetsFS, "assets")
	if err != nil {
		return nil, err
	}
	h.files = http.FileServerFS(root)
	return h, nil
}

// pageConfig is GET /web/config.json: what the pages need besides the API.
type pageConfig struct {
	TileURL         string                 `json:"tile_url"` // empty: no tiles
	TileAttribution string                 `json:"tile_attribution"`
	Taxonomy        []schemas.TaxonomyTerm `json:"taxonomy"`
	Okrugs          []schemas.Okrug        `json:"okrugs"`
	Districts       []district             `json:"districts"`
}

type district struct {
	Name  string `json:"name"`
	Okrug string `json:"okrug"`
}

func districts() []district {
	src := schemas.Districts()
	out := make([]district, len(src))
	for i, d := range src {
		out[i] = district{Name: d.Name, Okrug: d.Okrug}
	}
	return out
}

// Mount registers the routes.
func (h *Handler) Mount(m interface {
	Handle(pattern string, h http.Handler)
}) {
	pages := h.secure(h.files)
	m.Handle("GET "+NavigatorPath, pages)
	m.Handle("GET "+ConsolePath, pages)
	m.Handle("GET /web/", pages)
	m.Handle("GET /web/config.json", h.secure(http.HandlerFunc(h.pageConfig)))
	if h.opts.Stats != nil {
		m.Handle("POST /v1/stats/searches", http.HandlerFunc(h.recordSearch))
		m.Handle("GET /v1/stats/searches", http.HandlerFunc(h.searchCounts))
	}
	if h.opts.Guard != nil {
		m.Handle("GET /v1/whoami", h.opts.Guard.Require("")(http.HandlerFunc(h.whoami)))
	}
}

// WantsHTML reports whether a request comes from a browser navigating (Accept names text/html):
// the hub's root redirects those to the navigator and answers API clients with the HSDS root.
func WantsHTML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == "text/html" && params["q"] != "0" {
			return true
		}
	}
	return false
}

// RedirectBrowsers wraps the root's handler: a browser asking for it goes to the navigator.
func RedirectBrowsers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if WantsHTML(r) {
			w.Header().Add("Vary", "Accept")
			http.Redirect(w, r, NavigatorPath, http.StatusFound)
			return
		}
		w.Header().Add("Vary", "Accept")
		next.ServeHTTP(w, r)
	})
}

// secure sets the headers of every page and asset: a strict content policy (scripts and data from
// the hub only, images from the tile server too), no framing, no sniffing, and revalidation so a
// new hub version's assets are picked up at once.
func (h *Handler) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", h.csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) pageConfig(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(h.config)
}

// maxReport bounds a search report's body.
const maxReport = 4 << 10

func (h *Handler) recordSearch(w http.ResponseWriter, r *http.Request) {
	var q Search
	dec := json.NewDecoder(io.LimitReader(r.Body, maxReport))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		writeError(w, http.StatusBadRequest, "invalid search report", []fieldError{{Field: "body", Message: "a JSON object {category, okrug, district} is required"}})
		return
	}
	if errs := q.check(); len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid search report", errs)
		return
	}
	if err := h.opts.Stats.Record(r.Context(), q); err != nil {
		if r.Context().Err() == nil {
			h.log.ErrorContext(r.Context(), "error recording a search", slog.Any("error", err))
			writeError(w, http.StatusServiceUnavailable, "the search cannot be recorded now", nil)
		}
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// maxStatsDays bounds the days one request of the analytics covers.
const maxStatsDays = 366

func (h *Handler) searchCounts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	to := h.opts.Stats.now().In(moscow)
	from := to.AddDate(0, 0, -29)
	var errs []fieldError
	parse := func(name string, into *time.Time) {
		if v := q.Get(name); v != "" {
			t, err := time.ParseInLocation(time.DateOnly, v, moscow)
			if err != nil {
				errs = append(errs, fieldError{Field: name, Message: "a date YYYY-MM-DD"})
				return
			}
			*into = t
		}
	}
	parse("from", &from)
	parse("to", &to)
	if len(errs) == 0 && to.Before(from) {
		errs = append(errs, fieldError{Field: "to", Message: "not before from"})
	}
	if len(errs) == 0 && to.Sub(from) > maxStatsDays*24*time.Hour {
		errs = append(errs, fieldError{Field: "from", Message: "at most 366 days before to"})
	}
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid query parameters", errs)
		return
	}
	rows, err := h.opts.Stats.Counts(r.Context(), from, to)
	if err != nil {
		if r.Context().Err() == nil {
			h.log.ErrorContext(r.Context(), "error reading search counts", slog.Any("error", err))
			writeError(w, http.StatusServiceUnavailable, "the counts cannot be read now", nil)
		}
		return
	}
	if rows == nil {
		rows = []SearchCount{}
	}
	jsonhttp.Write(w, http.StatusOK, map[string]any{
		"from": from.Format(time.DateOnly), "to": to.Format(time.DateOnly), "searches": rows,
	})
}

// whoami tells the console who signed in: the name to greet and the purposes it may declare.
func (h *Handler) whoami(w http.ResponseWriter, r *http.Request) {
	c, _ := clients.FromContext(r.Context())
	jsonhttp.Write(w, http.StatusOK, map[string]any{
		"id": c.ID, "name": c.Name, "kind": c.Kind, "scopes": c.Scopes, "purposes": c.Purposes,
	})
}

// fieldError is a field-level reason a request was refused.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, msg string, fields []fieldError) {
	jsonhttp.Write(w, status, struct {
		Error  string       `json:"error"`
		Fields []fieldError `json:"fields,omitempty"`
	}{msg, fields})
}
