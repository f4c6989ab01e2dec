package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/obdgw/obdgw/drivers/serialport"
)

// listPorts is the port enumerator; a variable so the test can show USB adapters a build
// machine does not have.
var listPorts = serialport.List

func init() {
	register(command{
		name:    "ports",
		summary: "list serial ports and USB adapters with the address to configure",
		run:     runPorts,
	})
}

// portJSON is one line of `obdgw ports --json`.
type portJSON struct {
	serialport.PortInfo
	Addr string `json:"addr"`
}

func runPorts(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "ports", "[--json]")
	asJSON := fs.Bool("json", false, "print a JSON array instead of a table")
	if err := fs.Parse(args); err != nil {
		return usageError("%v", err)
	}
	if fs.NArg() > 0 {
		return usageError("ports takes no arguments (got %q)", fs.Args())
	}
	ports, err := listPorts()
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]portJSON, 0, len(ports))
		for _, p := range ports {
			out = append(out, portJSON{PortInfo: p, Addr: p.Addr()})
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(ports) == 0 {
		fmt.Fprintln(e.stderr, "no serial ports found: is the adapter plugged in? (Bluetooth adapters appear once rfcomm is bound; Wi-Fi adapters use tcp://host:35000)")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tUSB ID\tSERIAL\tPRODUCT\tADDRESS")
	for _, p := range ports {
		id, serial, product := "-", "-", "-"
		if p.USB {
			id = p.VID + ":" + p.PID
		}
		if p.Serial != "" {
			serial = p.Serial
		}
		if p.Product != "" {
			product = p.Product
			if p.Manufacturer != "" {
				product = p.Manufacturer + " " + p.Product
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Path, id, serial, product, p.Addr())
	}
	return tw.Flush()
}
