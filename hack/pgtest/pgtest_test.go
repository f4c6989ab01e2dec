package pgtest

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestStartServesOnItsOwnPort: the server answers on its random port as the superuser with the
// password, refuses a wrong password over TCP, and is not the machine's own service.
func TestStartServesOnItsOwnPort(t *testing.T) {
	s := Start(t)
	if s.Port == 5432 {
		t.Fatalf("the test server took 5432, the port of the machine's own service")
	}
	var db, addr string
	if err := s.Conn(t).QueryRow(t.Context(), "SELECT current_database(), inet_server_addr()::text").Scan(&db, &addr); err != nil {
		t.Fatal(err)
	}
	if db != "obdgw" || !strings.HasPrefix(addr, "127.0.0.1") {
		t.Errorf("connected to %q at %q", db, addr)
	}
	wrong := strings.Replace(s.URLWithPassword(), s.Password, "wrong", 1)
	if c, err := pgx.Connect(t.Context(), wrong); err == nil {
		c.Close(context.Background())
		t.Error("a wrong password was accepted")
	}
}
