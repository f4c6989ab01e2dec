// Package wire is the one place the gateway's MQTT wire format lives: the topic scheme, the
// envelope every record travels in, the retained status message and the receipts a provincial
// receiver sends back. docs/wire-format.md describes the same format for people on the other
// end; a change here is a change there.
//
// The packages that move bytes (buffer, cloud) never import wire: the gateway hands them
// functions from here (Frame, ParseReceipt, MarshalStatus, Validate), so a change of payload
// touches one package. Payload schemas of the record kinds live next door in this package
// (ehr.go for JT/T 1132 maintenance records, im.go for I/M M-station records); the records are
// built elsewhere (gateway/ehr, gateway/imrecord). wire imports only the standard library, so a
// receiver that validates records links no driver, serial library or YAML parser.
//
// Every parser of outside input here (ParseEnvelope, ParseReceipt, ParseStatus, ParseTopic)
// returns an error naming the field that is wrong, and has a fuzz target.
package wire
