package main

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/amanat/dbops/spec"
)

// maskHandler masks every registered secret in the HTTP answers of `dbops
// run` (/status, /metrics): the response is buffered whole so a secret is
// never split across writes.
func maskHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &bufferedResponse{header: http.Header{}, code: http.StatusOK}
		r = r.Clone(r.Context())
		r.Header.Del("Accept-Encoding") // masking needs the plain text
		h.ServeHTTP(rec, r)
		body := []byte(spec.Mask(rec.body.String()))
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.code)
		w.Write(body)
	})
}

type bufferedResponse struct {
	header http.Header
	body   bytes.Buffer
	code   int
	wrote  bool
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if !b.wrote {
		b.code, b.wrote = code, true
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}
