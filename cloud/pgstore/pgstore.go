package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/obdgw/obdgw/cloud"
)

// Options configure Open.
type Options struct {
	// URL is a PostgreSQL connection URL without a password,
	// e.g. postgres://obdgw@db.example:5432/records?sslmode=verify-full.
	URL string
	// PasswordFile holds the password (mode 0600; a trailing newline is ignored). Without it
	// the password comes from PGPASSFILE or ~/.pgpass, as with libpq.
	PasswordFile string
	// Receiver names the receiver in each row it stores (its MQTT client id).
	Receiver string
	Logger   *slog.Logger
	Now      func() time.Time
}

// Store is a cloud.Store in PostgreSQL. Its pool reconnects on its own after the server
// restarts; a batch that fails meanwhile is offered again by the receiver.
type Store struct {
	pool *pgxpool.Pool
	name string // the URL without password, for logs
	o    Options
}

var _ cloud.Store = (*Store)(nil)

// Open connects, creates or migrates the schema, and returns the store.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.URL == "" {
		return nil, errors.New("pgstore: empty database URL; want postgres://user@host:port/database")
	}
	if hasPassword(o.URL) {
		return nil, errors.New("pgstore: the database URL holds a password; put it in a mode 0600 file (--postgres-password-file) or in PGPASSFILE, never on the command line")
	}
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		// pgx names the URL in its error with the password masked; there is none anyway.
		return nil, fmt.Errorf("pgstore: database URL: %w", err)
	}
	if o.PasswordFile != "" {
		pw, err := readPassword(o.PasswordFile)
		if err != nil {
			return nil, err
		}
		cfg.ConnConfig.Password = pw
	}
	// One receiver stores one batch at a time; a second connection covers the migration and
	// a pool replacing a broken connection.
	cfg.MaxConns = 2
	s := &Store{name: Redact(o.URL), o: o}
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", s.name, err)
	}
	if err := migrate(ctx, s.pool); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("pgstore: %s: %w", s.name, err)
	}
	return s, nil
}

// hasPassword reports whether a URL or key=value connection string carries a password.
func hasPassword(conn string) bool {
	if u, err := url.Parse(conn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, ok := u.User.Password(); ok {
			return true
		}
		return u.Query().Has("password")
	}
	for _, f := range strings.Fields(conn) {
		if strings.HasPrefix(f, "password=") {
			return true
		}
	}
	return false
}

// Redact is the URL as logs show it: no password, no query.
func Redact(conn string) string {
	u, err := url.Parse(conn)
	if err != nil || u.Host == "" {
		return "postgres database"
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	if u.User != nil {
		r.User = url.User(u.User.Username())
	}
	return r.String()
}

func readPassword(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("pgstore: password file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("pgstore: password file %s has mode %04o; it must be readable by its owner only: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("pgstore: password file: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("pgstore: password file %s is empty", path)
	}
	return pw, nil
}

func (s *Store) String() string { return s.name }

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

const insert = `INSERT INTO records (id, gateway, incarnation, seq, kind, digest, payload, received_at, receiver)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`

// Store keeps a batch in one transaction (see the package comment).
func (s *Store) Store(ctx context.Context, recs []cloud.StoreRecord) ([]cloud.StoreResult, error) {
	res := make([]cloud.StoreResult, len(recs))
	var order []int
	for i, r := range recs {
		if reason := storable(r); reason != "" {
			res[i] = cloud.StoreResult{Outcome: cloud.Refused, Reason: reason}
			continue
		}
		order = append(order, i)
	}
	if len(order) == 0 {
		return res, nil
	}
	// In id order: two receivers' batches lock the same ids in the same order, never in a cycle.
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(recs[a].ID, recs[b].ID) })
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: begin: %w", s.name, err)
	}
	defer tx.Rollback(context.Background())
	now := s.o.Now()
	var b pgx.Batch
	for _, i := range order {
		r := recs[i]
		b.Queue(insert, r.ID, r.Gateway, r.Incarnation, int64(r.Seq), r.Kind, r.Digest[:], string(r.Payload), now, s.o.Receiver)
	}
	br := tx.SendBatch(ctx, &b)
	var held []string // ids that did not go in: duplicates or conflicts
	for _, i := range order {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return nil, fmt.Errorf("pgstore: %s: insert %s: %w", s.name, recs[i].ID, err)
		}
		if tag.RowsAffected() == 0 {
			res[i].Outcome = cloud.Duplicate
			held = append(held, recs[i].ID)
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("pgstore: %s: insert: %w", s.name, err)
	}
	if len(held) > 0 {
		digests := map[string][]byte{}
		rows, err := tx.Query(ctx, `SELECT id, digest FROM records WHERE id = ANY($1)`, held)
		if err != nil {
			return nil, fmt.Errorf("pgstore: %s: digests: %w", s.name, err)
		}
		for rows.Next() {
			var id string
			var d []byte
			if err := rows.Scan(&id, &d); err != nil {
				rows.Close()
				return nil, fmt.Errorf("pgstore: %s: digests: %w", s.name, err)
			}
			digests[id] = d
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("pgstore: %s: digests: %w", s.name, err)
		}
		for _, i := range order {
			if res[i].Outcome != cloud.Duplicate {
				continue
			}
			d, ok := digests[recs[i].ID]
			if !ok {
				return nil, fmt.Errorf("pgstore: %s: %s neither inserted nor found", s.name, recs[i].ID)
			}
			if string(d) != string(recs[i].Digest[:]) {
				res[i].Outcome = cloud.Conflict
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: %s: commit: %w", s.name, err)
	}
	return res, nil
}

// storable says why a record cannot go into the table, or "". A jsonb value cannot hold the
// character U+0000 or half a surrogate pair, nor can text hold invalid UTF-8: such a record
// would fail its whole batch again and again, so it is refused alone.
func storable(r cloud.StoreRecord) string {
	if r.Seq > math.MaxInt64 {
		return "pgstore: record id " + r.ID + ": sequence " + strconv.FormatUint(r.Seq, 10) + " exceeds PostgreSQL's bigint"
	}
	if !utf8.Valid(r.Payload) {
		return "pgstore: record " + r.ID + " is not valid UTF-8"
	}
	if err := jsonbSafe(r.Payload); err != "" {
		return "pgstore: record " + r.ID + ": " + err + ", which PostgreSQL's jsonb cannot store"
	}
	return ""
}

// jsonbSafe scans the \u escapes of valid JSON for what jsonb rejects: \u0000 and surrogates
// that do not form a pair.
func jsonbSafe(b []byte) string {
	hex := func(i int) (rune, bool) {
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
		return rune(v), err == nil
	}
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 < len(b) && b[i+1] != 'u' {
				i++ // a one-character escape, \" and \\ included
				continue
			}
			r, ok := hex(i)
			if !ok {
				return "a broken \\u escape"
			}
			switch {
			case r == 0:
				return "a \\u0000 escape"
			case r >= 0xDC00 && r <= 0xDFFF:
				return "a lone low surrogate"
			case r >= 0xD800 && r <= 0xDBFF:
				lo, ok := hex(i + 6)
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return "a lone high surrogate"
				}
				i += 6
			}
			i += 5
		}
	}
	return ""
}
