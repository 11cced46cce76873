// Command linkserver is the talk's Go stack serving svc's benchmark endpoint: stdlib net/http routing,
// log/slog JSON access lines on stdout (one per request, through a status/bytes recording ResponseWriter),
// and the same SQLite query as svc (modernc.org/sqlite: Go's standard library has no SQLite driver).
//
//	PORT=8080 DATABASE_PATH=svc.db ./linkserver
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "modernc.org/sqlite"
)

type link struct {
	Slug      string `json:"slug"`
	URL       string `json:"url"`
	CreatedAt string `json:"created_at"`
	Hits      int64  `json:"hits"`
}

// recorder is the talk's ResponseWriter decorator: it remembers the status and counts the bytes.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

func accessLog(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("http.request.method", r.Method),
			slog.String("http.route", r.Pattern),
			slog.String("url.path", r.URL.Path),
			slog.Int("http.response.status_code", rec.status),
			slog.Int("http.response.body.bytes", rec.bytes),
			slog.Int64("event.duration", time.Since(start).Nanoseconds()),
			slog.String("client.address", r.RemoteAddr),
			slog.String("user_agent.original", r.UserAgent()),
		)
	})
}

func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"title": http.StatusText(status), "status": status, "detail": detail})
}

func run(ctx context.Context, stdout io.Writer, getenv func(string) string) error {
	logger := slog.New(slog.NewJSONHandler(stdout, nil))
	db, err := sql.Open("sqlite", getenv("DATABASE_PATH"))
	if err != nil {
		return err
	}
	defer db.Close()
	// One connection, like svc's single SQLite worker thread; the query is prepared once.
	db.SetMaxOpenConns(1)
	getLink, err := db.PrepareContext(ctx, "SELECT slug, url, created_at, hits FROM links WHERE slug = ?")
	if err != nil {
		return err
	}
	defer getLink.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /links/{slug}", func(w http.ResponseWriter, r *http.Request) {
		var l link
		err := getLink.QueryRowContext(r.Context(), r.PathValue("slug")).Scan(&l.Slug, &l.URL, &l.CreatedAt, &l.Hits)
		if errors.Is(err, sql.ErrNoRows) {
			problem(w, http.StatusNotFound, "no link with that slug")
			return
		}
		if err != nil {
			problem(w, http.StatusInternalServerError, "internal error")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(l)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := db.PingContext(r.Context()); err != nil {
			problem(w, http.StatusServiceUnavailable, "database unavailable")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ready"}`)
	})

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", getenv("PORT")))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: accessLog(logger, mux), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("listening", slog.String("server.address", ln.Addr().String()))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
