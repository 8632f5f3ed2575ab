package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

type failingWriter struct{ httptest.ResponseRecorder }

func (w *failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestLogsMiddleware(t *testing.T) {
	var gotCtx context.Context
	var writeErr error
	h := logsMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotCtx = r.Context()
		_, writeErr = w.Write([]byte("data"))
	}))

	req := httptest.NewRequest("GET", "/containerLogs/ns/pod/c?tailLines=0", nil)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if gotCtx.Value(tailZeroKey{}) == nil {
		t.Fatal("tailLines=0 not marked")
	}

	req = httptest.NewRequest("GET", "/containerLogs/ns/pod/c?tailLines=5", nil)
	fw := &failingWriter{}
	h = logsMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotCtx = r.Context()
		_, writeErr = w.Write([]byte("data"))
		if gotCtx.Err() == nil {
			t.Error("a failed write did not cancel the request context")
		}
	}))
	h.ServeHTTP(fw, req)
	if writeErr != nil || gotCtx.Value(tailZeroKey{}) != nil {
		t.Fatalf("write error %v leaked to the handler, or tail 5 marked as 0", writeErr)
	}
}
