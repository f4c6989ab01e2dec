// Package config reads the daemon's YAML configuration (obdgw.yaml): state directory, gateway
// id, company, bays, broker, API and console settings and the emission limits.
//
// Parsing is strict: an unknown key (with the key that was probably meant), a duplicate key, a
// value of the wrong type and every value that fails validation is reported with its line and
// YAML path, all of them at once, so a technician fixes the file in one pass:
//
//	config: /etc/obdgw/obdgw.yaml: 2 problems
//	  /etc/obdgw/obdgw.yaml:14: bays[1].rig.modle: unknown key (did you mean model?)
//	  /etc/obdgw/obdgw.yaml:20: emission.two_speed_idle.precondition: want a duration with its unit, like 30s or 5m, got "30"
//
// A syntax error stops the parse and is the one problem reported, on the line to fix.
// go.yaml.in/yaml/v3 does the YAML; this package walks its node tree to keep the key paths.
//
// Device addresses are checked with serialport.ParseAddr, the parser serialport.Open uses, so
// an address the file accepts is one the daemon can open.
//
// Secrets never sit in the file itself: API tokens and the broker password are read from files
// that must not be readable by group or others (Load refuses them and says which chmod fixes
// it).
package config
