// Command webapp is the seed's application in Go: users with a profile
// picture, an e-signature and an attendance QR code, forum messages with an
// image, and donations with a receipt. Every file change goes through
// mediaclean's filefield inside the database transaction, a sweeper deletes
// old QR codes in-process, and the admin page shows the storage report and
// runs the orphan check.
//
//	go run ./examples/webapp                # http://127.0.0.1:8080, data in ./data
//	go run ./examples/webapp -addr :9000 -data /var/lib/app -qr-age 24h
//
// It uses SQLite (data/app.db) and a local media folder (data/media) on the
// symlink-safe os.Root backend; nothing else needs installing.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	_ "modernc.org/sqlite"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	data := flag.String("data", "./data", "folder for the database and the media (created if missing)")
	qrAge := flag.Duration("qr-age", 7*24*time.Hour, "QR codes older than this are swept")
	sweepEvery := flag.Duration("sweep-every", time.Hour, "how often the in-process sweeper runs")
	flag.Parse()
	if err := run(*addr, *data, *qrAge, *sweepEvery); err != nil {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
}

func run(addr, data string, qrAge, sweepEvery time.Duration) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	media := filepath.Join(data, "media")
	if err := os.MkdirAll(media, 0o755); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "app.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	fsys, err := storage.NewRootFs(media)
	if err != nil {
		return err
	}
	defer fsys.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app, err := NewApp(ctx, db, fsys, log, qrAge)
	if err != nil {
		return err
	}
	go app.RunSweeper(ctx, sweepEvery)

	srv := &http.Server{Addr: addr, Handler: app.Routes(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	fmt.Printf("mediaclean example running: open http://%s/ (data in %s)\n", addr, data)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
