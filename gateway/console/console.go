package console

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"strings"

	"github.com/obdgw/obdgw/obd"
)

//go:embed assets
var assets embed.FS

// csp keeps the page to its own origin: no inline scripts, no outside hosts, so a shop with no
// internet sees the same console as one with it, and injected text cannot run.
const csp = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// maxDTCLookup bounds one /dtc.json request: a scan report rarely holds more than a dozen codes.
const maxDTCLookup = 64

// Handler serves the console under its mount point (the daemon mounts it at "/", next to the
// API at /api/v1/). Besides the embedded files it answers GET /dtc.json?codes=P0420,P0171 with
// the catalogue text of each code in both languages, so the language switch can re-describe a
// scan report that was decoded in the other language, and GET /labels.json with the names of
// readiness monitors and PIDs. Both are public reference data: no token needed.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "console: only GET", http.StatusMethodNotAllowed)
			return
		}
		switch {
		case r.URL.Path == "/dtc.json":
			serveDTC(w, r)
			return
		case r.URL.Path == "/labels.json":
			serveLabels(w)
			return
		case r.URL.Path == "/" || r.URL.Path == "/index.html":
			h.Set("Cache-Control", "no-cache")
		case strings.HasPrefix(r.URL.Path, "/assets/"):
			r.URL.Path = strings.TrimPrefix(r.URL.Path, "/assets")
		}
		files.ServeHTTP(w, r)
	})
}

// monitors are the readiness monitor keys a scan report can name.
var monitors = []string{obd.MonMisfire, obd.MonFuelSystem, obd.MonComponents, obd.MonCatalyst, obd.MonHeatedCatalyst,
	obd.MonEvap, obd.MonSecondaryAir, obd.MonOxygenSensor, obd.MonOxygenHeater, obd.MonEGRVVT, obd.MonNMHCCatalyst,
	obd.MonNOxSCR, obd.MonBoostPressure, obd.MonExhaustGasSensor, obd.MonPMFilter}

// Labels are the display names of readiness monitors (by key) and Mode 01 PIDs (by two hex
// digits) in both languages, from the obd package, so the page and the text report agree.
type Labels struct {
	Monitors map[string]DTCText `json:"monitors"`
	PIDs     map[string]DTCText `json:"pids"`
}

func labels() Labels {
	l := Labels{Monitors: map[string]DTCText{}, PIDs: map[string]DTCText{}}
	for _, m := range monitors {
		l.Monitors[m] = DTCText{ZH: obd.MonitorLabel(m, "zh"), EN: obd.MonitorLabel(m, "en")}
	}
	for i := 0; i < 256; i++ {
		if p, ok := obd.LookupPID(byte(i)); ok {
			l.PIDs[fmt.Sprintf("%02X", i)] = DTCText{ZH: p.Label("zh"), EN: p.Label("en")}
		}
	}
	return l
}

func serveLabels(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(labels())
}

// DTCText is one code's description in both console languages.
type DTCText struct {
	ZH string `json:"zh"`
	EN string `json:"en"`
}

func serveDTC(w http.ResponseWriter, r *http.Request) {
	out := map[string]DTCText{}
	codes := strings.Split(r.URL.Query().Get("codes"), ",")
	if len(codes) > maxDTCLookup {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "console: at most 64 codes per request", "field": "codes"})
		return
	}
	for _, c := range codes {
		c = strings.ToUpper(strings.TrimSpace(c))
		if !validCode(c) {
			continue // unknown shapes are left out; the page keeps the report's own text
		}
		out[c] = DTCText{ZH: obd.DescribeDTC(c, "zh"), EN: obd.DescribeDTC(c, "en")}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(out)
}

// validCode accepts the five-character J1979 form: P, C, B or U, then four hex digits.
func validCode(c string) bool {
	if len(c) != 5 || !strings.ContainsRune("PCBU", rune(c[0])) {
		return false
	}
	for _, x := range c[1:] {
		if !(x >= '0' && x <= '9' || x >= 'A' && x <= 'F') {
			return false
		}
	}
	return true
}

// PageWeight returns the bytes the browser loads for the console's first view (HTML, script,
// style, translations), the figure the README reports.
func PageWeight() (int64, error) {
	var n int64
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	return n, err
}
