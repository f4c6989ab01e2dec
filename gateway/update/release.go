package update

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// roles are the four top-level TUF roles, one ed25519 key each.
var roles = []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

// Expiry is how long each role's metadata stays valid after it is signed. The timestamp is
// short so a frozen repository (an attacker replaying old files) is noticed; boxes check
// every few hours, so the publisher re-signs it (obdgw release --refresh) well within it.
type Expiry struct {
	Root, Targets, Snapshot, Timestamp time.Duration
}

// RootRenewBefore: Refresh signs a new root version when the current one expires sooner.
const RootRenewBefore = 180 * 24 * time.Hour

// DefaultExpiry is used for zero fields.
var DefaultExpiry = Expiry{Root: 2 * 365 * 24 * time.Hour, Targets: 365 * 24 * time.Hour, Snapshot: 30 * 24 * time.Hour, Timestamp: 14 * 24 * time.Hour}

// Publisher builds and signs a TUF repository in a directory a static HTTPS server serves.
// The repository uses consistent snapshots: every metadata version and every binary keeps its
// own file (N.targets.json, targets/<sha256>.obdgw-linux-arm64), so a box that downloads
// while a release is published never mixes two releases.
type Publisher struct {
	Repo string // the served directory
	Keys string // the private keys, one per role, mode 0600 (never served)
	Now  func() time.Time
	Expiry
}

func (p *Publisher) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

func (p *Publisher) expires(d, def time.Duration) time.Time {
	if d == 0 {
		d = def
	}
	return p.now().UTC().Add(d).Truncate(time.Second)
}

// Init creates the keys (refusing to overwrite any) and an empty repository: root version 1,
// empty targets, snapshot and timestamp. The root.json it writes is what boxes trust first.
func (p *Publisher) Init() error {
	if err := os.MkdirAll(p.Keys, 0o700); err != nil {
		return fmt.Errorf("update: keys: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(p.Repo, "targets"), 0o755); err != nil {
		return fmt.Errorf("update: repository: %w", err)
	}
	if _, err := os.Stat(filepath.Join(p.Repo, "root.json")); err == nil {
		return fmt.Errorf("update: %s already holds a repository (root.json); publish into it without --init", p.Repo)
	}
	root := metadata.Root(p.expires(p.Root, DefaultExpiry.Root))
	for _, role := range roles {
		path := filepath.Join(p.Keys, role+".key")
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("update: %s exists: refusing to replace a signing key", path)
		}
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if err := writeAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return err
		}
		key, err := metadata.KeyFromPublicKey(priv.Public())
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if err := root.Signed.AddKey(key, role); err != nil {
			return fmt.Errorf("update: %w", err)
		}
	}
	targets := metadata.Targets(p.expires(p.Targets, DefaultExpiry.Targets))
	if err := p.sign(root, metadata.ROOT); err != nil {
		return err
	}
	if err := p.write(root, fmt.Sprintf("%d.root.json", root.Signed.Version), "root.json"); err != nil {
		return err
	}
	return p.commit(targets, nil)
}

// Release is one version's binaries for Publish.
type Release struct {
	Version string
	// Rollout is the percentage of gateways that take it (1–100).
	Rollout int
	// Binaries are files named like their targets (obdgw-linux-arm64, …).
	Binaries []string
}

// Publish adds a release's binaries to the repository (replacing the targets of the same
// names), bumps the targets, snapshot and timestamp versions, signs and writes them.
func (p *Publisher) Publish(r Release) error {
	if !ValidVersion(r.Version) {
		return fmt.Errorf("update: version %q: want a release version like v1.2.3", clip(r.Version))
	}
	if r.Rollout < 1 || r.Rollout > 100 {
		return fmt.Errorf("update: rollout %d: want a percentage from 1 to 100", r.Rollout)
	}
	if len(r.Binaries) == 0 {
		return errors.New("update: no binaries to publish")
	}
	targets, err := load[metadata.TargetsType](p.Repo, "targets.json")
	if err != nil {
		return err
	}
	custom, err := json.Marshal(Custom{Version: r.Version, RolloutPercent: r.Rollout})
	if err != nil {
		return err
	}
	raw := json.RawMessage(custom)
	files := map[string][]byte{}
	for _, b := range r.Binaries {
		name := filepath.Base(b)
		if !ValidTargetName(name) {
			return fmt.Errorf("update: %s: name the binary after its target, e.g. obdgw-linux-arm64, obdgw-linux-armv7, obdgw-linux-armv6, obdgw-linux-amd64", b)
		}
		if _, dup := files[name]; dup {
			return fmt.Errorf("update: %s is given twice", name)
		}
		data, err := os.ReadFile(b)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		tf, err := metadata.TargetFile().FromBytes(name, data, "sha256")
		if err != nil {
			return fmt.Errorf("update: %s: %w", b, err)
		}
		tf.Custom = &raw
		targets.Signed.Targets[name] = tf
		files[name] = data
	}
	for name, data := range files {
		tf := targets.Signed.Targets[name]
		file := fmt.Sprintf("%x.%s", []byte(tf.Hashes["sha256"]), name)
		if err := writeAtomic(filepath.Join(p.Repo, "targets", file), data, 0o644); err != nil {
			return err
		}
	}
	targets.Signed.Version++
	targets.Signed.Expires = p.expires(p.Expiry.Targets, DefaultExpiry.Targets)
	return p.commit(targets, nil)
}

// Refresh re-signs the targets, snapshot and timestamp with new expiry dates and higher
// versions, changing nothing else: run it from cron well within the timestamp's expiry, so a
// repository without new releases does not expire.
func (p *Publisher) Refresh() error {
	targets, err := load[metadata.TargetsType](p.Repo, "targets.json")
	if err != nil {
		return err
	}
	root, err := load[metadata.RootType](p.Repo, "root.json")
	if err != nil {
		return err
	}
	if root.Signed.Expires.Before(p.now().Add(RootRenewBefore)) {
		// A new root version with the same keys and a new expiry, signed by the root key:
		// boxes follow it from the root they trust (N.root.json, then N+1.root.json).
		root.Signed.Version++
		root.Signed.Expires = p.expires(p.Expiry.Root, DefaultExpiry.Root)
		if err := p.sign(root, metadata.ROOT); err != nil {
			return err
		}
		if err := p.write(root, fmt.Sprintf("%d.root.json", root.Signed.Version), "root.json"); err != nil {
			return err
		}
	}
	targets.Signed.Version++
	targets.Signed.Expires = p.expires(p.Expiry.Targets, DefaultExpiry.Targets)
	return p.commit(targets, nil)
}

// commit writes targets when changed (nil: unchanged, then current is the one in place), and
// a new snapshot and timestamp over it.
func (p *Publisher) commit(changed, current *metadata.Metadata[metadata.TargetsType]) error {
	t := changed
	if changed != nil {
		if err := p.sign(changed, metadata.TARGETS); err != nil {
			return err
		}
		if err := p.write(changed, fmt.Sprintf("%d.targets.json", changed.Signed.Version), "targets.json"); err != nil {
			return err
		}
	} else {
		t = current
	}
	snap := metadata.Snapshot(p.expires(p.Expiry.Snapshot, DefaultExpiry.Snapshot))
	ts := metadata.Timestamp(p.expires(p.Expiry.Timestamp, DefaultExpiry.Timestamp))
	if old, err := load[metadata.SnapshotType](p.Repo, "snapshot.json"); err == nil {
		snap.Signed.Version = old.Signed.Version + 1
	}
	if old, err := load[metadata.TimestampType](p.Repo, "timestamp.json"); err == nil {
		ts.Signed.Version = old.Signed.Version + 1
	}
	snap.Signed.Meta["targets.json"] = metadata.MetaFile(t.Signed.Version)
	if err := p.sign(snap, metadata.SNAPSHOT); err != nil {
		return err
	}
	if err := p.write(snap, fmt.Sprintf("%d.snapshot.json", snap.Signed.Version), "snapshot.json"); err != nil {
		return err
	}
	ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(snap.Signed.Version)
	if err := p.sign(ts, metadata.TIMESTAMP); err != nil {
		return err
	}
	// The timestamp is written last: it is what makes the new release visible.
	return p.write(ts, "timestamp.json")
}

type signable interface {
	Sign(signature.Signer) (*metadata.Signature, error)
	ClearSignatures()
	ToBytes(bool) ([]byte, error)
}

func (p *Publisher) sign(m signable, role string) error {
	priv, err := readKey(filepath.Join(p.Keys, role+".key"))
	if err != nil {
		return err
	}
	s, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		return fmt.Errorf("update: %s key: %w", role, err)
	}
	m.ClearSignatures()
	if _, err := m.Sign(s); err != nil {
		return fmt.Errorf("update: sign %s: %w", role, err)
	}
	return nil
}

func (p *Publisher) write(m signable, names ...string) error {
	b, err := m.ToBytes(true)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	for _, n := range names {
		if err := writeAtomic(filepath.Join(p.Repo, n), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func load[T metadata.Roles](repo, name string) (*metadata.Metadata[T], error) {
	path := filepath.Join(repo, name)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("update: %s has no %s: create the repository with --init first", repo, name)
	}
	m, err := (&metadata.Metadata[T]{}).FromFile(path)
	if err != nil {
		return nil, fmt.Errorf("update: %s: %w", path, err)
	}
	return m, nil
}

// readKey reads a role's private key, refusing a file others may read.
func readKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("update: signing key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("update: signing key %s is readable by group or others (mode %04o): run chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("update: signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("update: signing key %s: no PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("update: signing key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("update: signing key %s is not ed25519", path)
	}
	return priv, nil
}
