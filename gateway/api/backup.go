package api

import (
	"io"
	"net/http"
	"time"

	"github.com/obdgw/obdgw/gateway/audit"
)

// Backuper is the store's consistent copy (*buffer.DB implements it).
type Backuper interface {
	Backup(w io.Writer) (int64, error)
}

func (s *Server) backupRoutes() []Route {
	return []Route{
		{"POST", "/backup", "a consistent copy of the state file, taken while the gateway runs (token always needed: it holds owner data)", managers, s.backup},
	}
}

// backup streams the whole store as one consistent copy. It is a POST so that it always needs
// a token, anonymous reads or not: the file holds owners' names and phone numbers.
func (s *Server) backup(w http.ResponseWriter, r *http.Request, c *caller) {
	b, ok := s.opts.Outbox.(Backuper)
	if !ok {
		refuse(w, r, &apiError{status: http.StatusNotImplemented, msg: "this gateway's store cannot be copied while it runs; stop it and copy the file"})
		return
	}
	s.record(c, audit.Entry{Action: audit.ActionBackup})
	// A store of some hundred megabytes on an SD card takes longer than an ordinary answer.
	stream(w)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="obdgw-`+time.Now().UTC().Format("20060102T150405Z")+`.db"`)
	n, err := b.Backup(w)
	if err != nil {
		// The status line has gone out: the client sees a short body, and the error is logged.
		s.log.Error("api: backup failed", "err", err, "bytes", n, "caller", c.name)
		return
	}
	s.log.Info("api: backup taken", "bytes", n, "caller", c.name)
}
