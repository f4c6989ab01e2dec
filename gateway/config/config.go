package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/obdgw/obdgw/drivers/loopback"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/gateway/emission"
)

// Config is the whole configuration. Zero values of optional keys are replaced by the defaults
// of Default before the file is laid over them.
type Config struct {
	// StateDir holds the one bbolt file (outbox and work orders); under systemd it is the
	// StateDirectory (/var/lib/obdgw).
	StateDir string `yaml:"state_dir"`
	// GatewayID names this box: MQTT client id, topic level, record-id prefix.
	GatewayID string  `yaml:"gateway_id"`
	Company   Company `yaml:"company"`
	Bays      []Bay   `yaml:"bays"`
	Broker    Broker  `yaml:"broker"`
	Uplink    Uplink  `yaml:"uplink"`
	API       API     `yaml:"api"`
	Console   Console `yaml:"console"`
	Records   Records `yaml:"records"`
	Waste     Waste   `yaml:"waste"`
	// Emission holds the I/M limits and procedure parameters (gateway/emission); keys left out
	// keep emission.DefaultLimits().
	Emission emission.Limits `yaml:"emission"`
	// Update turns on signed updates (gateway/update, docs/update.md); nil: no updates.
	Update *Update `yaml:"update"`

	// File is the path the configuration was loaded from ("" for Parse); relative file names
	// in it are resolved against its directory.
	File string `yaml:"-"`
}

// Company is the shop as the provincial platform knows it.
type Company struct {
	Code     string `yaml:"code"`     // companycode issued at registration (15 digits in every known example)
	Name     string `yaml:"name"`     // full registered name, the record's companyname
	Province string `yaml:"province"` // GB/T 2260 code of the province ("33") or division ("330106"), a topic level
}

// Bay is one workshop bay: an OBD adapter, optionally an emission rig and a status light.
type Bay struct {
	Name string `yaml:"name"`
	// OBD is the adapter address: serial:///dev/ttyUSB0?baud=38400, usb://0403:6001?serial=…,
	// tcp://192.168.0.10:35000.
	OBD  string `yaml:"obd"`
	Rig  *Rig   `yaml:"rig"`
	LEDs *LEDs  `yaml:"leds"`
}

// Rig is an emission instrument on a serial line.
type Rig struct {
	Model   string `yaml:"model"`   // driver family, e.g. "nanhua-nha506" (drivers/<rig>)
	Address string `yaml:"address"` // same address forms as Bay.OBD
	// Serial is the instrument's serial number (出厂编号), which the M-station record names.
	Serial string `yaml:"serial"`
}

// LEDs names the GPIO pins of the bay's status light (periph names: "GPIO17").
type LEDs struct {
	Green string `yaml:"green"`
	Red   string `yaml:"red"`
}

// Broker is the MQTT uplink to the provincial broker.
type Broker struct {
	URL          string `yaml:"url"` // mqtts://host:8883 (tcp:// only to a loopback broker)
	CAFile       string `yaml:"ca_file"`
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"` // secret: mode 0600
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"` // secret: mode 0600
	// Delivery is when a record counts as delivered: "receipt" (the receiver confirmed the
	// platform accepted it) or "puback" (the broker has it).
	Delivery string `yaml:"delivery"`
	// Inflight is how many records may await acknowledgement at once.
	Inflight int `yaml:"inflight"`
	// DrainRate limits publishing after an outage (records per second) so a backlog does
	// not flood the broker.
	DrainRate float64 `yaml:"drain_rate"`

	Password string `yaml:"-"` // read from PasswordFile by Load
}

// Uplink says how records leave the gateway. Optional: without it, over MQTT to broker.
type Uplink struct {
	// Transport is "mqtt" (the default: every record to broker) or "ehr-https": ehr records
	// go straight to the national eHR HTTPS API (EHR); the other kinds (im) still go to
	// broker when broker.url is set, and otherwise wait in the outbox.
	Transport string      `yaml:"transport"`
	EHR       EHRPlatform `yaml:"ehr"`
}

// Transports of uplink.transport.
const (
	TransportMQTT     = "mqtt"
	TransportEHRHTTPS = "ehr-https"
)

// EHRPlatform is the national eHR API (lcipprodatarest, docs/ehr-record.md §4.1). Paths,
// token lifetime and codes are not in any public source: unconfirmed, set them from the
// province's interface document (对接文档).
type EHRPlatform struct {
	URL       string `yaml:"url"`        // the service root, https://…/restservices/lcipprodatarest/
	TokenPath string `yaml:"token_path"` // default lcipprogetaccesstoken/query (unconfirmed)
	AddPath   string `yaml:"add_path"`   // default lcipprocarfixrecordadd/query (unconfirmed)
	// AppKeyFile holds the login's companycode (optional: company.code when absent);
	// AppSecretFile its companypassword. Both secret: mode 0600, one line.
	AppKeyFile    string        `yaml:"app_key_file"`
	AppSecretFile string        `yaml:"app_secret_file"`
	CAFile        string        `yaml:"ca_file"`        // CA of the platform's certificate; empty = system roots
	Timeout       time.Duration `yaml:"timeout"`        // each request; 0 = 15s
	TokenLifetime time.Duration `yaml:"token_lifetime"` // 0 = 1h (unconfirmed)
	// Codes of the add call (unconfirmed, none by default): the token expired, slow down,
	// the record exists already (counts as delivered).
	ExpiredCodes   []string `yaml:"expired_codes"`
	RateLimitCodes []string `yaml:"rate_limit_codes"`
	DuplicateCodes []string `yaml:"duplicate_codes"`

	AppKey    string `yaml:"-"` // read from AppKeyFile (or company.code) by Load
	AppSecret string `yaml:"-"` // read from AppSecretFile by Load
}

// EHRHTTPS says whether ehr records go to the national eHR HTTPS API.
func (c *Config) EHRHTTPS() bool { return c.Uplink.Transport == TransportEHRHTTPS }

// API is the REST API for the DMS and the console.
type API struct {
	Listen string  `yaml:"listen"` // host:port
	Tokens []Token `yaml:"tokens"`
	// AnonymousReads lets GET requests through without a token (a console on a closed shop
	// LAN). Writes always need a token.
	AnonymousReads bool `yaml:"anonymous_reads"`
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxConnections caps the HTTP connections served at once (API, console, /metrics); more
	// wait in the kernel's queue until one ends, so a flood cannot use up the gateway's file
	// descriptors (the uplink and the buffer file need some too).
	MaxConnections int `yaml:"max_connections"`
}

// Token is one bearer token, kept in its own file.
type Token struct {
	Name string `yaml:"name"` // who holds it ("dms", "tablet-1"): logged, never the secret
	File string `yaml:"file"` // secret: mode 0600, one line
	// Role is what the holder may do (docs/api.md "Roles"): technician, front_desk, manager,
	// shop_software or monitor. Empty: shop_software, the role of the shop's DMS, which every
	// token had before roles existed (owner data then needs a front_desk or manager token).
	Role string `yaml:"role"`

	Secret string `yaml:"-"` // read from File by Load
}

// Waste is the shop's waste ledger (docs/api.md "Waste").
type Waste struct {
	// DueDays: waste stored this many days is shown due for hand-over. A shop policy (90 by
	// default), not a number of the catalogue: the collector's licence and local rules decide.
	DueDays int `yaml:"due_days"`
	// Codes are the codes of the general solid-waste categories, whose codes are not confirmed
	// (docs/wire-format.md): empty sends none; the records mark them unconfirmed either way.
	Codes WasteCodes `yaml:"codes"`
}

// WasteCodes are the configurable codes (一般固体废物代码) of the unconfirmed categories.
type WasteCodes struct {
	ScrapSteel string `yaml:"scrap_steel"`
	ScrapTyre  string `yaml:"scrap_tyre"`
}

// Map is the codes by category name, as gateway/waste takes them.
func (c WasteCodes) Map() map[string]string {
	return map[string]string{"scrap_steel": c.ScrapSteel, "scrap_tyre": c.ScrapTyre}
}

// Console is the embedded web console.
type Console struct {
	Enabled bool `yaml:"enabled"`
}

// Update is where the gateway looks for signed releases and how it tries them.
type Update struct {
	// Repository is the TUF repository's base URL: https:// (http:// only to this box).
	Repository string `yaml:"repository"`
	// RootFile is the repository's root.json as the deployer put it on the box: the keys
	// trusted first.
	RootFile string `yaml:"root_file"`
	// CAFile, when set, is the CA that signed the repository server's certificate (a
	// private server); otherwise the system's CAs are trusted.
	CAFile string `yaml:"ca_file"`
	// CheckEvery is how often the repository is asked (default 6h).
	CheckEvery time.Duration `yaml:"check_every"`
	// HealthTimeout is how long a new version has to become healthy before it is rolled
	// back (default 5m).
	HealthTimeout time.Duration `yaml:"health_timeout"`
}

// Defaults of the update section.
const (
	DefaultCheckEvery    = 6 * time.Hour
	DefaultHealthTimeout = 5 * time.Minute
)

// Records are rules of the record builder that vary by province (unconfirmed values).
type Records struct {
	// MaxOutboxRecords bounds the outbox (0 = unlimited); regulatory records are refused,
	// never dropped, past it.
	MaxOutboxRecords int `yaml:"max_outbox_records"`
}

// Default returns the configuration every file is laid over.
func Default() Config {
	return Config{
		StateDir: "/var/lib/obdgw",
		Broker:   Broker{Delivery: "receipt", Inflight: 8, DrainRate: 20},
		API:      API{Listen: "127.0.0.1:8080", MaxBodyBytes: 1 << 20, MaxConnections: DefaultMaxConnections},
		Console:  Console{Enabled: true},
		Waste:    Waste{DueDays: 90},
		Emission: emission.DefaultLimits(),
	}
}

// MaxFileBytes bounds the configuration file.
const MaxFileBytes = 1 << 20

// Parse decodes and validates a configuration without touching the file system (secret files
// are not read: see Load). name labels the errors.
func Parse(data []byte, name string) (*Config, error) {
	cfg := Default()
	errs := &Errors{File: name}
	if len(data) > MaxFileBytes {
		errs.List = append(errs.List, Error{Msg: fmt.Sprintf("the file has %d bytes, at most %d", len(data), MaxFileBytes)})
		return nil, errs
	}
	root, synErr := parseYAML(data)
	if synErr != nil {
		errs.List = append(errs.List, *synErr)
		return nil, errs
	}
	d := &decoder{lines: map[string]int{}}
	d.decode(root, reflect.ValueOf(&cfg).Elem(), "")
	errs.List = append(errs.List, d.errs...)
	v := &validator{lines: d.lines}
	v.validate(&cfg)
	errs.List = append(errs.List, v.errs...)
	if len(errs.List) > 0 {
		sort.SliceStable(errs.List, func(i, j int) bool { return errs.List[i].Line < errs.List[j].Line })
		return nil, errs
	}
	for i := range cfg.API.Tokens {
		if cfg.API.Tokens[i].Role == "" {
			cfg.API.Tokens[i].Role = DefaultTokenRole
		}
	}
	return &cfg, nil
}

// Load reads, parses and validates the file at path, then reads the secret files it names
// (relative names are resolved against the file's directory), refusing any that group or
// others may read.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	cfg, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	cfg.File = path
	cfg.resolvePaths()
	if err := cfg.LoadSecrets(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Resolve returns a file name from the configuration as a path: relative names are taken
// against the configuration file's directory.
func (c *Config) Resolve(name string) string {
	if name == "" || filepath.IsAbs(name) || c.File == "" {
		return name
	}
	return filepath.Join(filepath.Dir(c.File), name)
}

// resolvePaths turns every file name in the configuration into a path against the
// configuration file's directory, so that what the file says holds whatever the working
// directory of the process (systemd starts it in /).
func (c *Config) resolvePaths() {
	for _, p := range []*string{&c.Broker.CAFile, &c.Broker.CertFile, &c.Broker.KeyFile, &c.Broker.PasswordFile,
		&c.Uplink.EHR.AppKeyFile, &c.Uplink.EHR.AppSecretFile, &c.Uplink.EHR.CAFile} {
		*p = c.Resolve(*p)
	}
	for i := range c.API.Tokens {
		c.API.Tokens[i].File = c.Resolve(c.API.Tokens[i].File)
	}
}

// LoadSecrets reads the token and password files and checks that the TLS files exist and that
// the key is private. Every problem is reported, with its path.
func (c *Config) LoadSecrets() error {
	errs := &Errors{File: c.File}
	add := func(path string, err error) {
		errs.List = append(errs.List, Error{Path: path, Msg: err.Error()})
	}
	seen := map[string]string{}
	for i := range c.API.Tokens {
		p := fmt.Sprintf("api.tokens[%d].file", i)
		s, err := readSecret(c.Resolve(c.API.Tokens[i].File))
		if err != nil {
			add(p, err)
			continue
		}
		if len(s) < MinTokenLen {
			add(p, fmt.Errorf("the token in %s has %d characters, at least %d are needed (generate one: head -c 24 /dev/urandom | base64)", c.Resolve(c.API.Tokens[i].File), len(s), MinTokenLen))
			continue
		}
		if other, dup := seen[s]; dup {
			add(p, fmt.Errorf("the same token as %s: give each holder its own", other))
			continue
		}
		seen[s] = p
		c.API.Tokens[i].Secret = s
	}
	if c.Broker.PasswordFile != "" {
		s, err := readSecret(c.Resolve(c.Broker.PasswordFile))
		if err != nil {
			add("broker.password_file", err)
		} else {
			c.Broker.Password = s
		}
	}
	keyOK := true
	if c.Broker.KeyFile != "" {
		if f, err := checkPrivate(c.Resolve(c.Broker.KeyFile)); err != nil {
			add("broker.key_file", err)
			keyOK = false
		} else {
			f.Close()
		}
	}
	now := time.Now()
	if u := c.Update; u != nil {
		if u.RootFile != "" {
			if _, err := os.Stat(c.Resolve(u.RootFile)); err != nil {
				add("update.root_file", err)
			}
		}
		if u.CAFile != "" {
			if err := checkCAFile(c.Resolve(u.CAFile), now); err != nil {
				add("update.ca_file", err)
			}
		}
	}
	if c.Broker.CAFile != "" {
		if err := checkCAFile(c.Resolve(c.Broker.CAFile), now); err != nil {
			add("broker.ca_file", err)
		}
	}
	if c.Broker.CertFile != "" && keyOK {
		if err := checkClientCert(c.Resolve(c.Broker.CertFile), c.Resolve(c.Broker.KeyFile), now); err != nil {
			add("broker.cert_file", err)
		}
	}
	if c.EHRHTTPS() {
		e := &c.Uplink.EHR
		e.AppKey = c.Company.Code
		if e.AppKeyFile != "" {
			if s, err := readSecret(c.Resolve(e.AppKeyFile)); err != nil {
				add("uplink.ehr.app_key_file", err)
			} else {
				e.AppKey = s
			}
		}
		if s, err := readSecret(c.Resolve(e.AppSecretFile)); err != nil {
			add("uplink.ehr.app_secret_file", err)
		} else {
			e.AppSecret = s
		}
		if e.CAFile != "" {
			if err := checkCAFile(c.Resolve(e.CAFile), now); err != nil {
				add("uplink.ehr.ca_file", err)
			}
		}
	}
	if len(errs.List) > 0 {
		return errs
	}
	return nil
}

// ReadSecret reads a one-line secret from a file that group and others cannot read: the rule
// of every secret file of the configuration, for the commands that take one as a flag.
func ReadSecret(path string) (string, error) { return readSecret(path) }

// DefaultMaxConnections is api.max_connections when the file does not set it: enough for a
// shop's tablets, the DMS and a scraper (each console holds two event streams), far below the
// 1024 descriptors a service gets by default.
const DefaultMaxConnections = 128

// wasteCodeRe is wire.WasteCodeWellFormed's shape (config does not import gateway/wire).
var wasteCodeRe = regexp.MustCompile(`^[0-9A-Z]{1,8}(-[0-9A-Z]{1,8}){0,3}$`)

// TokenRoles are the roles a token may have (gateway/api's Roles, which the daemon hands
// them to).
var TokenRoles = []string{"technician", "front_desk", "manager", "shop_software", "monitor"}

// DefaultTokenRole is the role of a token configured without one.
const DefaultTokenRole = "shop_software"

// MinTokenLen is the shortest API token accepted.
const MinTokenLen = 16

// checkPrivate opens a secret file and refuses it when group or others have any access. A
// FIFO or device is refused before it is opened, and the open does not block (an open of a
// FIFO waits for a writer, which would hang the start).
func checkPrivate(path string) (*os.File, error) {
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		f.Close()
		return nil, fmt.Errorf("%s is readable by group or others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	return f, nil
}

func readSecret(path string) (string, error) {
	if path == "" {
		return "", errors.New("no file named")
	}
	f, err := checkPrivate(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	if strings.ContainsAny(s, "\n\r") {
		return "", fmt.Errorf("%s has more than one line; put one secret per file", path)
	}
	return s, nil
}

// validator checks values after decoding, locating each problem by the lines the decoder saw.
type validator struct {
	errs  []Error
	lines map[string]int
}

func (v *validator) errorf(path, format string, a ...any) {
	line := 0
	for p := path; ; {
		if l, ok := v.lines[p]; ok {
			line = l
			break
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	v.errs = append(v.errs, Error{Path: path, Line: line, Msg: fmt.Sprintf(format, a...)})
}

var (
	idRe       = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	bayRe      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)
	digitsRe   = regexp.MustCompile(`^[0-9]+$`)
	alnumRe    = regexp.MustCompile(`^[0-9A-Za-z]+$`)
	pinRe      = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)
	rigModelRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
)

func (v *validator) validate(c *Config) {
	if c.StateDir == "" || !filepath.IsAbs(c.StateDir) {
		v.errorf("state_dir", "want an absolute directory, got %q", c.StateDir)
	}
	switch {
	case c.GatewayID == "":
		v.errorf("gateway_id", "missing: name this box (a-z, 0-9, '-', '_', '.'), e.g. hz-shop1-gw1")
	case !idRe.MatchString(c.GatewayID):
		v.errorf("gateway_id", "%q: use 1–63 of a-z, 0-9, '-', '_', '.' starting with a letter or digit (it becomes an MQTT client id and topic level)", clip(c.GatewayID))
	}

	switch {
	case c.Company.Code == "":
		v.errorf("company.code", "missing: the companycode the provincial platform issued at registration")
	case !alnumRe.MatchString(c.Company.Code) || len(c.Company.Code) > 15:
		// Every known code is 15 digits (varchar(15)); "always 15 digits" is unconfirmed, so
		// only the topic-safe shape is enforced.
		v.errorf("company.code", "%q: want at most 15 letters or digits (every known companycode is 15 digits)", clip(c.Company.Code))
	}
	switch n := utf8.RuneCountInString(c.Company.Name); {
	case strings.TrimSpace(c.Company.Name) == "":
		v.errorf("company.name", "missing: the shop's full registered name (it goes into every record)")
	case n > 100:
		v.errorf("company.name", "%d characters, the record allows at most 100", n)
	}
	switch p := c.Company.Province; {
	case p == "":
		v.errorf("company.province", "missing: the GB/T 2260 code of the province, e.g. \"33\" for 浙江 or \"330106\"")
	case !digitsRe.MatchString(p) || (len(p) != 2 && len(p) != 6):
		v.errorf("company.province", "%q: want a GB/T 2260 code of 2 or 6 digits, e.g. \"33\" or \"330106\" (quote it)", clip(p))
	case p[:2] < "11" || p[:2] > "82":
		v.errorf("company.province", "%q: no GB/T 2260 province starts with %s", p, p[:2])
	}

	if len(c.Bays) == 0 {
		v.errorf("bays", "no bays: configure at least one bay with its OBD adapter")
	}
	names := map[string]int{}
	pins := map[string]string{}
	// Two users of one device would take turns failing to open it (ErrBusy).
	devices := map[string]string{}
	useDevice := func(path string, a serialport.Addr) {
		if other, dup := devices[device(a)]; dup {
			v.errorf(path, "the same device as %s", other)
			return
		}
		devices[device(a)] = path
	}
	for i, b := range c.Bays {
		p := fmt.Sprintf("bays[%d]", i)
		switch {
		case b.Name == "":
			v.errorf(p+".name", "missing: name the bay (e.g. bay1)")
		case !bayRe.MatchString(b.Name):
			v.errorf(p+".name", "%q: use 1–32 of letters, digits, '-', '_' (it appears in URLs)", clip(b.Name))
		default:
			if j, dup := names[b.Name]; dup {
				v.errorf(p+".name", "%q is already the name of bays[%d]", b.Name, j)
			}
			names[b.Name] = i
		}
		if b.OBD == "" {
			v.errorf(p+".obd", "missing: the adapter address, e.g. serial:///dev/ttyUSB0 or tcp://192.168.0.10:35000")
		} else if a, err := checkDeviceAddr(b.OBD); err != nil {
			v.errorf(p+".obd", "%v", err)
		} else {
			useDevice(p+".obd", a)
		}
		if b.Rig != nil {
			if !rigModelRe.MatchString(b.Rig.Model) {
				v.errorf(p+".rig.model", "%q: want the driver name of the analyzer or opacimeter, e.g. nanhua-nha506", clip(b.Rig.Model))
			} else if known := rig.ModelNames(); len(known) > 0 {
				// The drivers linked into this program register their models; a name none
				// of them knows would fail every self-test, so it is refused here.
				if _, ok := rig.Lookup(b.Rig.Model); !ok {
					v.errorf(p+".rig.model", "%q: no driver of that name; known: %s", clip(b.Rig.Model), strings.Join(known, ", "))
				}
			}
			if b.Rig.Address == "" {
				v.errorf(p+".rig.address", "missing: the rig's serial address")
			} else if a, err := checkDeviceAddr(b.Rig.Address); err != nil {
				v.errorf(p+".rig.address", "%v", err)
			} else {
				useDevice(p+".rig.address", a)
			}
		}
		if b.LEDs != nil {
			for _, l := range []struct{ key, pin string }{{"green", b.LEDs.Green}, {"red", b.LEDs.Red}} {
				if l.pin == "" {
					continue
				}
				lp := p + ".leds." + l.key
				if !pinRe.MatchString(l.pin) {
					v.errorf(lp, "%q: want a GPIO pin name such as GPIO17", clip(l.pin))
				} else if other, dup := pins[l.pin]; dup {
					v.errorf(lp, "pin %s is already used by %s", l.pin, other)
				} else {
					pins[l.pin] = lp
				}
			}
		}
	}

	v.validateUplink(&c.Uplink)
	if !c.EHRHTTPS() || c.Broker.URL != "" {
		v.validateBroker(&c.Broker)
	}

	if c.API.Listen == "" {
		v.errorf("api.listen", "missing: host:port, e.g. 0.0.0.0:8080")
	} else if _, port, err := net.SplitHostPort(c.API.Listen); err != nil || port == "" {
		v.errorf("api.listen", "%q: want host:port, e.g. 0.0.0.0:8080", clip(c.API.Listen))
	}
	if len(c.API.Tokens) == 0 {
		v.errorf("api.tokens", "no tokens: every write needs a bearer token; add one (name, file)")
	}
	tnames := map[string]bool{}
	for i, t := range c.API.Tokens {
		p := fmt.Sprintf("api.tokens[%d]", i)
		if !bayRe.MatchString(t.Name) {
			v.errorf(p+".name", "%q: name the holder (letters, digits, '-', '_')", clip(t.Name))
		} else if tnames[t.Name] {
			v.errorf(p+".name", "%q is used twice", t.Name)
		}
		tnames[t.Name] = true
		if t.File == "" {
			v.errorf(p+".file", "missing: the file holding the token (mode 0600); tokens are never written in this file")
		}
		if t.Role != "" && !slices.Contains(TokenRoles, t.Role) {
			v.errorf(p+".role", "%q: want one of %s (absent: %s)", clip(t.Role), strings.Join(TokenRoles, ", "), DefaultTokenRole)
		}
	}
	if c.API.MaxBodyBytes < 1024 || c.API.MaxBodyBytes > 64<<20 {
		v.errorf("api.max_body_bytes", "%d: want between 1024 and 67108864", c.API.MaxBodyBytes)
	}
	if c.API.MaxConnections < 4 || c.API.MaxConnections > 10000 {
		v.errorf("api.max_connections", "%d: want between 4 and 10000 (default %d)", c.API.MaxConnections, DefaultMaxConnections)
	}
	if c.Waste.DueDays < 1 || c.Waste.DueDays > 3650 {
		v.errorf("waste.due_days", "%d: want 1 to 3650 days (default 90)", c.Waste.DueDays)
	}
	for _, wc := range []struct{ key, code string }{{"scrap_steel", c.Waste.Codes.ScrapSteel}, {"scrap_tyre", c.Waste.Codes.ScrapTyre}} {
		if wc.code != "" && !wasteCodeRe.MatchString(wc.code) {
			v.errorf("waste.codes."+wc.key, "%q: want a code such as 900-001-S17 (digits, capitals, '-')", clip(wc.code))
		}
	}
	if c.Records.MaxOutboxRecords < 0 {
		v.errorf("records.max_outbox_records", "%d: want 0 (unlimited) or more", c.Records.MaxOutboxRecords)
	}
	v.validateEmission(c.Emission)
	if c.Update != nil {
		v.validateUpdate(c.Update)
	}
}

func (v *validator) validateUpdate(u *Update) {
	if u.Repository == "" {
		v.errorf("update.repository", "missing: the update repository, e.g. https://updates.example.cn/obdgw/")
	} else if r, err := url.Parse(u.Repository); err != nil || r.Host == "" {
		v.errorf("update.repository", "%q: want https://host/path", clip(u.Repository))
	} else {
		switch r.Scheme {
		case "https":
		case "http":
			if !loopback.Host(r.Hostname()) {
				v.errorf("update.repository", "%q: plain http is allowed only to a server on this box; use https://", clip(u.Repository))
			}
		default:
			v.errorf("update.repository", "scheme %q: want https://", clip(r.Scheme))
		}
		if r.RawQuery != "" || r.Fragment != "" || r.User != nil {
			v.errorf("update.repository", "%q: want a plain base URL, without user, query or fragment", clip(u.Repository))
		}
	}
	if u.RootFile == "" {
		v.errorf("update.root_file", "missing: the repository's root.json put on this box by the deployer (see docs/update.md)")
	}
	if u.CheckEvery == 0 {
		u.CheckEvery = DefaultCheckEvery
	} else if u.CheckEvery < time.Minute || u.CheckEvery > 30*24*time.Hour {
		v.errorf("update.check_every", "%s: want between 1m and 720h (default 6h)", u.CheckEvery)
	}
	if u.HealthTimeout == 0 {
		u.HealthTimeout = DefaultHealthTimeout
	} else if u.HealthTimeout < time.Second || u.HealthTimeout > 24*time.Hour {
		v.errorf("update.health_timeout", "%s: want between 1s and 24h (default 5m)", u.HealthTimeout)
	}
}

// validateEmission places each value emission.Limits refuses at its key under "emission".
func (v *validator) validateEmission(l emission.Limits) {
	err := l.Validate()
	if err == nil {
		return
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	for _, e := range list {
		var le *emission.LimitError
		if errors.As(e, &le) {
			v.errorf("emission."+le.Key, "%s", le.Msg)
		} else {
			v.errorf("emission", "%v", e)
		}
	}
}

func (v *validator) validateUplink(u *Uplink) {
	e := &u.EHR
	switch u.Transport {
	case "", TransportMQTT:
		if e.URL != "" || e.AppSecretFile != "" {
			v.errorf("uplink.transport", "%q but uplink.ehr is set: say transport: %s to deliver to the eHR platform, or remove uplink.ehr", u.Transport, TransportEHRHTTPS)
		}
		return
	case TransportEHRHTTPS:
	default:
		v.errorf("uplink.transport", "%q: want %s (every record to the broker) or %s (ehr records to the national eHR API)", clip(u.Transport), TransportMQTT, TransportEHRHTTPS)
		return
	}
	if e.URL == "" {
		v.errorf("uplink.ehr.url", "missing: the platform's service root, e.g. https://qcda.96520.com/restservices/lcipprodatarest/")
	} else if pu, err := url.Parse(e.URL); err != nil || pu.Host == "" {
		v.errorf("uplink.ehr.url", "%q: want https://host/path/", clip(e.URL))
	} else {
		switch pu.Scheme {
		case "https":
		case "http":
			if !loopback.Host(pu.Hostname()) {
				v.errorf("uplink.ehr.url", "%q: an unencrypted connection is allowed only to this box; use https://", clip(e.URL))
			}
		default:
			v.errorf("uplink.ehr.url", "scheme %q: want https://", clip(pu.Scheme))
		}
		if pu.User != nil {
			v.errorf("uplink.ehr.url", "must not carry a user or password: use app_key_file and app_secret_file")
		}
	}
	if e.AppSecretFile == "" {
		v.errorf("uplink.ehr.app_secret_file", "missing: the file (mode 0600) holding the companypassword the platform issued")
	}
	for key, p := range map[string]string{"uplink.ehr.token_path": e.TokenPath, "uplink.ehr.add_path": e.AddPath} {
		if strings.Contains(p, "://") || strings.HasPrefix(p, "/") {
			v.errorf(key, "%q: want a path under uplink.ehr.url, e.g. lcipprocarfixrecordadd/query", clip(p))
		}
	}
	if e.Timeout < 0 || e.Timeout > 5*time.Minute {
		v.errorf("uplink.ehr.timeout", "%v: want up to 5m", e.Timeout)
	}
	if e.TokenLifetime < 0 || (e.TokenLifetime > 0 && e.TokenLifetime < time.Minute) {
		v.errorf("uplink.ehr.token_lifetime", "%v: want at least 1m", e.TokenLifetime)
	}
}

func (v *validator) validateBroker(b *Broker) {
	if b.URL == "" {
		v.errorf("broker.url", "missing: the provincial broker, e.g. mqtts://broker.example.cn:8883")
	} else if u, err := url.Parse(b.URL); err != nil || u.Host == "" {
		v.errorf("broker.url", "%q: want scheme://host:port, e.g. mqtts://broker.example.cn:8883", clip(b.URL))
	} else {
		switch u.Scheme {
		case "mqtts", "ssl", "tls":
		case "tcp", "mqtt":
			if !loopback.Host(u.Hostname()) {
				v.errorf("broker.url", "%q: an unencrypted connection is allowed only to a broker on this box; use mqtts://", clip(b.URL))
			}
		default:
			v.errorf("broker.url", "scheme %q: want mqtts:// (or tcp:// to a local broker)", clip(u.Scheme))
		}
		if u.Port() == "" {
			v.errorf("broker.url", "%q: name the port, e.g. :8883", clip(b.URL))
		}
	}
	if (b.CertFile == "") != (b.KeyFile == "") {
		v.errorf("broker.cert_file", "cert_file and key_file go together: set both or neither")
	}
	if b.PasswordFile != "" && b.Username == "" {
		v.errorf("broker.username", "missing: password_file is set but no username")
	}
	switch b.Delivery {
	case "receipt", "puback":
	default:
		v.errorf("broker.delivery", "%q: want receipt (the platform accepted it) or puback (the broker has it)", clip(b.Delivery))
	}
	if b.Inflight < 1 || b.Inflight > 1000 {
		v.errorf("broker.inflight", "%d: want 1 to 1000", b.Inflight)
	}
	if !(b.DrainRate > 0) || b.DrainRate > 10000 {
		v.errorf("broker.drain_rate", "%v: want records per second, more than 0 and at most 10000", b.DrainRate)
	}
}

// checkDeviceAddr parses a device address with the parser serialport.Open uses, so what the
// configuration accepts is exactly what the daemon can open, and a typo is found when the
// daemon starts rather than when the bay first tries to open its adapter.
func checkDeviceAddr(addr string) (serialport.Addr, error) {
	a, err := serialport.ParseAddr(addr)
	if err != nil {
		return a, errors.New(strings.TrimPrefix(err.Error(), "serialport: "))
	}
	return a, nil
}

// device names the device an address opens, whatever its baud, so two addresses of one
// device compare equal.
func device(a serialport.Addr) string {
	switch a.Kind {
	case "usb":
		return "usb://" + a.VID + ":" + a.PID + "?serial=" + a.Serial
	case "tcp":
		return "tcp://" + a.Host
	}
	return "serial://" + filepath.Clean(a.Path)
}
