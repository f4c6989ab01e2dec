package update

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// Custom is the custom metadata of a target in the repository.
type Custom struct {
	Version        string `json:"version"`
	RolloutPercent int    `json:"rollout_percent"`
}

// parseCustom decodes and checks a target's custom metadata.
func parseCustom(name string, raw *json.RawMessage) (Custom, error) {
	var c Custom
	if raw == nil {
		return c, fmt.Errorf("update: target %s has no custom metadata (version, rollout_percent)", name)
	}
	dec := json.NewDecoder(bytes.NewReader(*raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("update: target %s: custom metadata: %w", name, err)
	}
	if !ValidVersion(c.Version) {
		return c, fmt.Errorf("update: target %s: version %q is not a release version like v1.2.3", name, clip(c.Version))
	}
	if c.RolloutPercent < 0 || c.RolloutPercent > 100 {
		return c, fmt.Errorf("update: target %s: rollout_percent %d: want 0 to 100", name, c.RolloutPercent)
	}
	return c, nil
}

// Client checks a TUF repository for this gateway's binary and installs it.
type Client struct {
	// Dir is the update directory (Dir(state_dir)).
	Dir string
	// Repository is the base URL of the repository (metadata at its root, binaries under
	// targets/).
	Repository string
	// RootFile is the root.json the deployer put on the box: trusted until the repository
	// rotates it (the trusted copy then lives in Dir/metadata).
	RootFile string
	// CAFile, when set, is the only CA trusted for the repository's certificate.
	CAFile string
	// Gateway is the gateway id (the rollout hash), Running the version running now.
	Gateway, Running string
	// Target is the binary's name in the repository (default TargetName()).
	Target string
	// Now is the clock (nil = time.Now); metadata expiry is judged by the real clock.
	Now func() time.Time
}

// Available is what a check found.
type Available struct {
	Target    string `json:"target"`
	Version   string `json:"version"`
	Rollout   int    `json:"rollout_percent"`
	InRollout bool   `json:"in_rollout"`
	Newer     bool   `json:"newer"` // newer than the running version
	Bad       bool   `json:"bad"`   // rolled back here before: never installed again
	Length    int64  `json:"length"`
}

// Wanted reports whether this gateway should install the version found.
func (a Available) Wanted() bool { return a.Newer && a.InRollout && !a.Bad }

func (c *Client) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// updater builds a go-tuf updater starting from the trusted root: the cached one, which the
// repository may have rotated, or else the deployer's root file.
func (c *Client) updater() (*updater.Updater, error) {
	metaDir := filepath.Join(c.Dir, "metadata")
	if err := os.MkdirAll(metaDir, 0o700); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	root, err := os.ReadFile(filepath.Join(metaDir, "root.json"))
	if errors.Is(err, fs.ErrNotExist) {
		root, err = os.ReadFile(c.RootFile)
		if err != nil {
			return nil, fmt.Errorf("update: trusted root (update.root_file): %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	cfg, err := config.New(c.Repository, root)
	if err != nil {
		return nil, fmt.Errorf("update: repository %q: %w", c.Repository, err)
	}
	cfg.LocalMetadataDir = metaDir
	cfg.LocalTargetsDir = filepath.Join(c.Dir, "download")
	hc, err := c.httpClient()
	if err != nil {
		return nil, err
	}
	if err := cfg.SetDefaultFetcherHTTPClient(hc); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	u, err := updater.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("update: trusted root: %w", err)
	}
	u.UnsafeSetRefTime(c.now())
	return u, nil
}

func (c *Client) httpClient() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("update: update.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("update: update.ca_file %s holds no PEM certificate", c.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Minute}, nil
}

func (c *Client) target() string {
	if c.Target != "" {
		return c.Target
	}
	return TargetName()
}

// find refreshes the metadata and looks up this gateway's target.
func (c *Client) find(st *State) (*updater.Updater, *metadata.TargetFiles, Available, error) {
	var a Available
	u, err := c.updater()
	if err != nil {
		return nil, nil, a, err
	}
	if err := u.Refresh(); err != nil {
		return nil, nil, a, fmt.Errorf("update: repository %s refused: %w", c.Repository, err)
	}
	tf, err := u.GetTargetInfo(c.target())
	if err != nil {
		return nil, nil, a, fmt.Errorf("update: repository %s has no %s: %w", c.Repository, c.target(), err)
	}
	cu, err := parseCustom(c.target(), tf.Custom)
	if err != nil {
		return nil, nil, a, err
	}
	a = Available{
		Target:    c.target(),
		Version:   cu.Version,
		Rollout:   cu.RolloutPercent,
		InRollout: InRollout(c.Gateway, cu.Version, cu.RolloutPercent),
		Newer:     Newer(cu.Version, c.Running),
		Bad:       st.IsBad(cu.Version),
		Length:    tf.Length,
	}
	return u, tf, a, nil
}

// Check refreshes the trusted metadata and says what the repository offers this gateway. The
// time and outcome are recorded in the state file.
func (c *Client) Check(ctx context.Context) (Available, error) {
	st, err := ReadState(c.Dir)
	if err != nil {
		return Available{}, err
	}
	_, _, a, err := c.find(&st)
	c.record(a, err)
	return a, err
}

func (c *Client) record(a Available, err error) {
	Modify(c.Dir, func(s *State) error {
		s.LastCheck = c.now().UTC()
		s.LastError = ""
		if err != nil {
			s.LastError = err.Error()
		} else {
			s.Available = a.Version
		}
		return nil
	})
}

// Install checks the repository and, when it offers this gateway a newer version that is in
// its rollout and not bad, downloads it, verifies its length and hashes against the signed
// targets metadata, installs it as Dir/bin/obdgw-<version> and puts it on trial. uplinkBefore
// is the uplink's error now ("" = connected). It reports what it found and whether it
// installed; the caller restarts the gateway into the trial.
func (c *Client) Install(ctx context.Context, uplinkBefore string) (Available, bool, error) {
	st, err := ReadState(c.Dir)
	if err != nil {
		return Available{}, false, err
	}
	u, tf, a, err := c.find(&st)
	if err != nil || !a.Wanted() {
		c.record(a, err)
		return a, false, err
	}
	if st.Trial != nil && st.Trial.Version == a.Version {
		return a, false, nil // installed already, waiting for its restart
	}
	if err := os.MkdirAll(filepath.Join(c.Dir, "download"), 0o700); err != nil {
		return a, false, fmt.Errorf("update: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(c.Dir, "bin"), 0o700); err != nil {
		return a, false, fmt.Errorf("update: %w", err)
	}
	part := filepath.Join(c.Dir, "download", a.Target+".part")
	defer os.Remove(part)
	_, data, err := u.DownloadTarget(tf, part, "")
	if err != nil {
		err = fmt.Errorf("update: download of %s %s refused: %w", a.Target, a.Version, err)
		c.record(a, err)
		return a, false, err
	}
	dst := BinaryPath(c.Dir, a.Version)
	if err := writeAtomic(dst, data, 0o755); err != nil {
		c.record(a, err)
		return a, false, err
	}
	sum, err := fileSHA256(dst)
	if err != nil {
		return a, false, fmt.Errorf("update: %w", err)
	}
	err = Modify(c.Dir, func(s *State) error {
		if s.SHA256 == nil {
			s.SHA256 = map[string]string{}
		}
		s.SHA256[a.Version] = sum
		s.Trial = &Trial{Version: a.Version, UplinkBefore: uplinkBefore}
		s.LastCheck, s.LastError, s.Available = c.now().UTC(), "", a.Version
		return nil
	})
	if err != nil {
		return a, false, err
	}
	return a, true, nil
}
