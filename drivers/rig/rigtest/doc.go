// Package rigtest holds the helpers the rig driver tests share: a real pty with a simulator on
// the master and the driver's port opened through serialport.Open on the slave, exactly as
// `obdgw rig read` opens a USB-serial adapter.
package rigtest
