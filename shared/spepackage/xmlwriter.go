package spepackage

import (
	"encoding/xml"
	"io"
)

// xw is a small streaming XML writer over encoding/xml's token encoder. It
// remembers the first error so call sites stay readable; attributes come as
// name/value pairs, and an empty value leaves the attribute out (except
// FileLocation, which the schema examples write empty).
type xw struct {
	enc *xml.Encoder
	err error
}

func newXW(w io.Writer) *xw {
	x := &xw{enc: xml.NewEncoder(w)}
	// One element per line, so the service's line:column errors point somewhere.
	x.enc.Indent("", " ")
	// The declaration is written by hand: encoding/xml's Header spells the
	// encoding in upper case, SharePoint's own packages in lower case.
	_, x.err = io.WriteString(w, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n")
	return x
}

func (x *xw) start(name string, attrs ...string) {
	if x.err != nil {
		return
	}
	se := xml.StartElement{Name: xml.Name{Local: name}}
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] == "" && attrs[i] != "FileLocation" {
			continue
		}
		se.Attr = append(se.Attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
	}
	x.err = x.enc.EncodeToken(se)
}

func (x *xw) end(name string) {
	if x.err != nil {
		return
	}
	x.err = x.enc.EncodeToken(xml.EndElement{Name: xml.Name{Local: name}})
}

func (x *xw) empty(name string, attrs ...string) {
	x.start(name, attrs...)
	x.end(name)
}

func (x *xw) close() error {
	if x.err != nil {
		return x.err
	}
	return x.enc.Close()
}
