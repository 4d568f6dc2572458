package promtext

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
)

// ContentType is the text format's media type, as client_golang's handler sends it.
const ContentType = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"

// Handler serves r's metrics, gzipped when the scraper accepts it (Prometheus does).
func Handler(r *Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var buf bytes.Buffer
		if _, err := r.WriteTo(&buf); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", ContentType)
		h.Add("Vary", "Accept-Encoding")
		if !strings.Contains(req.Header.Get("Accept-Encoding"), "gzip") {
			w.Write(buf.Bytes())
			return
		}
		h.Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Write(buf.Bytes())
		zw.Close()
	})
}
