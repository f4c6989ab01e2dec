// Package loopback holds the one rule for which hosts an unencrypted connection may go to:
// this box only. The configuration check, the MQTT uplink and the eHR HTTPS client apply it
// to the addresses they are given.
package loopback

import "net"

// Host says whether host (a URL's Hostname) is this box: localhost or a loopback address.
func Host(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
