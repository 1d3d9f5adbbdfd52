package graphemu

import (
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The constrained schemas of spec §6.3–§6.4, reduced to what the import
// pipeline checks: element and attribute names, enumerations, and the
// xs:int / xs:boolean / xs:dateTime formats. Elements the spec does not
// constrain are "lax": their content is not checked.

type attrKind int

const (
	aString attrKind = iota
	aInt
	aByte
	aBool
	aDateTime
	aFloat
	aEnum
)

type attrSpec struct {
	kind attrKind
	enum []string
}

type elemSpec struct {
	attrs    map[string]attrSpec
	any      bool     // anyAttribute
	children []string // allowed child elements
	lax      bool     // content not validated
	maxOne   bool     // at most one child element
}

type schemaDoc struct {
	file  string
	root  string
	ns    string
	elems map[string]*elemSpec
}

// el builds an element spec from "Name Name:int Name:enum(A|B)".
func el(attrs string, any bool, children ...string) *elemSpec {
	e := &elemSpec{attrs: map[string]attrSpec{}, any: any, children: children}
	for _, a := range strings.Fields(attrs) {
		name, typ, _ := strings.Cut(a, ":")
		var s attrSpec
		switch {
		case typ == "" || typ == "guid":
			s.kind = aString
		case typ == "int":
			s.kind = aInt
		case typ == "byte":
			s.kind = aByte
		case typ == "bool":
			s.kind = aBool
		case typ == "dt":
			s.kind = aDateTime
		case typ == "float":
			s.kind = aFloat
		case strings.HasPrefix(typ, "enum("):
			s.kind = aEnum
			s.enum = strings.Split(strings.TrimSuffix(strings.TrimPrefix(typ, "enum("), ")"), "|")
		default:
			panic("graphemu: bad attr spec " + a)
		}
		e.attrs[name] = s
	}
	return e
}

func lax(any bool) *elemSpec { return &elemSpec{any: any, lax: true, attrs: map[string]attrSpec{}} }

const objectTypes = "SPList|SPDocumentLibrary|SPListItem|SPFolder|SPFile|SPContentType|SPDocumentTemplate|DeploymentUserX|DeploymentGroupX|DeploymentRoles|DeploymentRoleX|DeploymentRoleAssignments|DeploymentRoleAssignmentX"

const listBaseTypes = "UnspecifiedBaseType|GenericList|DocumentLibrary|Unused|DiscussionBoard|Survey|Issue"

var manifestSchema = &schemaDoc{file: "Manifest.xml", root: "SPObjects", ns: "urn:deployment-manifest-schema", elems: map[string]*elemSpec{
	"SPObjects": el("", false, "SPObject"),
	"SPObject": func() *elemSpec {
		e := el("ObjectType:enum("+objectTypes+") Id ParentId Name IsDeleted:bool IsSiteRename:bool ParentWebId ParentWebUrl ContentTypeId Url", false,
			"List", "DocumentLibrary", "ListItem", "Folder", "File", "ContentType", "UserX", "GroupX", "Roles", "RoleX", "RoleAssignments", "RoleAssignmentX")
		e.maxOne = true
		return e
	}(),
	"File": el("Name Id Url ListItemIntId:int InDocumentLibrary:bool ParentWebId ParentWebUrl ParentId ListId FileValue CheckinComment Version Author ModifiedBy TimeCreated:dt TimeLastModified:dt FailureMessage IsGhosted:bool SetupPath SetupPathUser SetupPathVersion:byte", true,
		"Properties", "Versions", "Links", "EventReceivers", "VersionEvents"),
	"Versions": el("", false, "File", "ListItem"),
	"Folder": el("Id Name Url ParentFolderId ParentWebId ParentWebUrl ContainingDocumentLibrary WelcomePageUrl WelcomePageParameters ListItemIntId:int Author ModifiedBy TimeCreated:dt TimeLastModified:dt ProgId SortBehavior", false,
		"Properties"),
	"ListItem": el("Name DirName FileUrl Version Id IntId:int DocId Author ModifiedBy TimeCreated:dt TimeLastModified:dt ParentWebId ParentListId ParentFolderId ModerationStatus:enum(Approved|Denied|Pending|Draft|Scheduled) ModerationComment ContentTypeId ProgId Order:float ThreadIndex UserSolutionActivated:bool DocType:enum(File|Folder|Unknown) UserLoginName GroupName FailureMessage", true,
		"Fields", "Versions", "Attachments", "Links", "EventReceivers"),
	"Fields":     el("", false, "Field", "FieldRef"),
	"Field":      lax(true),
	"FieldRef":   lax(true),
	"Properties": el("", false, "Property"),
	"Property":   el("Name Value Value2 Id Type:enum(String|Integer|Time|StringVector|Boolean|FileSystemTime|IntVector|Double|LongText|Empty) Access:enum(ReadOnly|ReadWrite)", false),
	"List": func() *elemSpec {
		e := el("Id Title RootFolderId RootFolderUrl ParentWebId ParentWebUrl BaseType:enum("+listBaseTypes+") BaseTemplate", true)
		e.lax = true
		return e
	}(),
	"DocumentLibrary": func() *elemSpec {
		e := el("Id Title RootFolderId RootFolderUrl ParentWebId ParentWebUrl BaseType:enum("+listBaseTypes+") BaseTemplate DocumentTemplateUrl IsCatalog:bool ThumbnailSize:int WebImageHeight:int WebImageWidth:int", true)
		e.lax = true
		return e
	}(),
	"Links": lax(true), "EventReceivers": lax(true), "VersionEvents": lax(true), "Attachments": lax(true),
	"ContentType": lax(true), "UserX": lax(true), "GroupX": lax(true), "Roles": lax(true), "RoleX": lax(true),
	"RoleAssignments": lax(true), "RoleAssignmentX": lax(true),
}}

var exportSettingsSchema = &schemaDoc{file: "ExportSettings.xml", root: "ExportSettings", ns: "urn:deployment-exportsettings-schema", elems: map[string]*elemSpec{
	"ExportSettings":   el("SiteUrl FileLocation BaseFileName IncludeSecurity:enum(None|WssOnly|All) IncludeVersions:enum(LastMajor|CurrentVersion|LastMajorAndMinor|All) ExportMethod:enum(ExportAll|ExportChanges) ExportChangeToken ExportPublicSchema:bool ExportFrontEndFileStreams:bool ExcludeDependencies:bool", true, "ExportObjects"),
	"ExportObjects":    el("", false, "DeploymentObject"),
	"DeploymentObject": el("Id Type:enum(Folder|List|ListItem|File) ParentId Url ExcludeChildren:bool IncludeDescendants:enum(None|Content|All) ExportChangeToken", false),
}}

var systemDataSchema = &schemaDoc{file: "SystemData.xml", root: "SystemData", ns: "urn:deployment-systemdata-schema", elems: map[string]*elemSpec{
	"SystemData":       el("", false, "SchemaVersion", "ManifestFiles", "SystemObjects", "RootWebOnlyLists"),
	"SchemaVersion":    el("Version Build DatabaseVersion:int SiteVersion", false),
	"ManifestFiles":    el("", false, "ManifestFile"),
	"ManifestFile":     el("Name", false),
	"SystemObjects":    el("", false, "SystemObject"),
	"SystemObject":     el("Id Type:enum(Site|Web|Folder|List|ListItem|File) Url", false),
	"RootWebOnlyLists": lax(true),
}}

var rootObjectMapSchema = &schemaDoc{file: "RootObjectMap.xml", root: "RootObjects", ns: "urn:deployment-rootobjectmap-schema", elems: map[string]*elemSpec{
	"RootObjects": el("", false, "RootObject"),
	"RootObject":  el("Id Type:enum(Folder|List|ListItem|File) ParentId WebUrl Url IsDependency:bool", false),
}}

var userGroupSchema = &schemaDoc{file: "UserGroup.xml", root: "UserGroupMap", ns: "urn:deployment-usergroupmap-schema", elems: map[string]*elemSpec{
	"UserGroupMap": el("", false, "Users", "Groups"),
	"Users":        el("", false, "User"),
	"User":         el("Id:int Name Login Email IsDomainGroup:bool IsSiteAdmin:bool SystemId IsDeleted:bool Flags:int", false),
	"Groups":       el("", false, "Group"),
	"Group":        el("Id:int Name Description Owner:int OwnerIsUser:bool OnlyAllowMembersViewMembership:bool RequestToJoinLeaveEmailSetting", false, "Member"),
	"Member":       el("UserId:int", false),
}}

var lookupListMapSchema = &schemaDoc{file: "LookupListMap.xml", root: "LookupLists", ns: "urn:deployment-lookuplistmap-schema", elems: map[string]*elemSpec{"LookupLists": lax(true)}}
var requirementsSchema = &schemaDoc{file: "Requirements.xml", root: "Requirements", ns: "urn:deployment-requirements-schema", elems: map[string]*elemSpec{"Requirements": lax(true)}}
var viewFormsListSchema = &schemaDoc{file: "ViewFormsList.xml", root: "ViewFormsList", ns: "urn:deployment-viewformlist-schema", elems: map[string]*elemSpec{"ViewFormsList": lax(true)}}

// node is one element with its subtree; manifests are read one SPObject at
// a time, so only one object's nodes are in memory.
type node struct {
	name      xml.Name
	attrs     map[string]string
	rawAttrs  []xml.Attr
	kids      []*node
	line, col int
}

func (n *node) attr(name string) string { return n.attrs[name] }

func (n *node) kid(name string) *node {
	for _, k := range n.kids {
		if k.name.Local == name {
			return k
		}
	}
	return nil
}

func newNode(dec *xml.Decoder, se xml.StartElement) *node {
	line, col := dec.InputPos()
	n := &node{name: se.Name, attrs: map[string]string{}, line: line, col: col}
	for _, a := range se.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		n.rawAttrs = append(n.rawAttrs, a)
		if a.Name.Space == "" {
			n.attrs[a.Name.Local] = a.Value
		}
	}
	return n
}

// readNode reads the rest of se's subtree.
func readNode(dec *xml.Decoder, se xml.StartElement) (*node, error) {
	n := newNode(dec, se)
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			k, err := readNode(dec, t)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, k)
		case xml.EndElement:
			return n, nil
		}
	}
}

// schemaError is a validation failure with its position.
type schemaError struct {
	file      string
	line, col int
	msg       string
}

func (e *schemaError) Error() string {
	return fmt.Sprintf("%s(%d,%d): %s", e.file, e.line, e.col, e.msg)
}

// validate checks n (named by its parent's schema) recursively.
func (sd *schemaDoc) validate(n *node) error {
	fail := func(format string, a ...any) error {
		return &schemaError{file: sd.file, line: n.line, col: n.col, msg: fmt.Sprintf(format, a...)}
	}
	if n.name.Space != sd.ns {
		return fail("element '%s' is in namespace '%s', want '%s'", n.name.Local, n.name.Space, sd.ns)
	}
	spec := sd.elems[n.name.Local]
	if spec == nil {
		return fail("element '%s' is not declared", n.name.Local)
	}
	for _, a := range n.rawAttrs {
		as, known := spec.attrs[a.Name.Local]
		if a.Name.Space != "" || !known {
			if spec.any {
				continue
			}
			return fail("the '%s' attribute is not declared on element '%s'", a.Name.Local, n.name.Local)
		}
		if err := checkValue(as, a.Value); err != nil {
			return fail("the '%s' attribute of '%s' has an invalid value '%s': %v", a.Name.Local, n.name.Local, a.Value, err)
		}
	}
	if spec.lax {
		return nil
	}
	if spec.maxOne && len(n.kids) > 1 {
		return fail("element '%s' has %d child elements; at most one is allowed", n.name.Local, len(n.kids))
	}
	for _, k := range n.kids {
		allowed := false
		for _, c := range spec.children {
			if k.name.Local == c {
				allowed = true
			}
		}
		if !allowed {
			return (&schemaDoc{file: sd.file}).failAt(k, "element '%s' has invalid child element '%s'", n.name.Local, k.name.Local)
		}
		if err := sd.validate(k); err != nil {
			return err
		}
	}
	return nil
}

func (sd *schemaDoc) failAt(n *node, format string, a ...any) error {
	return &schemaError{file: sd.file, line: n.line, col: n.col, msg: fmt.Sprintf(format, a...)}
}

var dateTimeRE = regexp.MustCompile(`^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$`)

func checkValue(as attrSpec, v string) error {
	switch as.kind {
	case aInt:
		if _, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32); err != nil {
			return fmt.Errorf("not an xs:int")
		}
	case aByte:
		if _, err := strconv.ParseInt(strings.TrimSpace(v), 10, 8); err != nil {
			return fmt.Errorf("not an xs:byte")
		}
	case aBool:
		switch strings.TrimSpace(v) {
		case "true", "false", "1", "0":
		default:
			return fmt.Errorf("not an xs:boolean")
		}
	case aFloat:
		if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return fmt.Errorf("not an xs:float")
		}
	case aDateTime:
		if _, err := parseDateTime(v); err != nil {
			return err
		}
	case aEnum:
		for _, e := range as.enum {
			if v == e {
				return nil
			}
		}
		return fmt.Errorf("the enumeration allows %s", strings.Join(as.enum, ", "))
	}
	return nil
}

// parseDateTime reads xs:dateTime; values without a zone are UTC.
func parseDateTime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if !dateTimeRE.MatchString(v) {
		return time.Time{}, fmt.Errorf("not an xs:dateTime")
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not an xs:dateTime")
}

// readDoc reads and validates a whole small document.
func readDoc(r io.Reader, sd *schemaDoc) (*node, error) {
	dec := xml.NewDecoder(r)
	se, err := rootElement(dec, sd.file)
	if err != nil {
		return nil, err
	}
	n, err := readNode(dec, se)
	if err != nil {
		return nil, xmlErr(sd.file, dec, err)
	}
	if err := sd.checkRoot(n); err != nil {
		return nil, err
	}
	return n, sd.validate(n)
}

func (sd *schemaDoc) checkRoot(n *node) error {
	if n.name.Local != sd.root || n.name.Space != sd.ns {
		return sd.failAt(n, "the root element is '%s' in namespace '%s'; want '%s' in namespace '%s'", n.name.Local, n.name.Space, sd.root, sd.ns)
	}
	return nil
}

func rootElement(dec *xml.Decoder, file string) (xml.StartElement, error) {
	for {
		tok, err := dec.Token()
		if err != nil {
			if err == io.EOF {
				return xml.StartElement{}, fmt.Errorf("%s: no root element", file)
			}
			return xml.StartElement{}, xmlErr(file, dec, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se, nil
		}
	}
}

func xmlErr(file string, dec *xml.Decoder, err error) error {
	line, col := dec.InputPos()
	return &schemaError{file: file, line: line, col: col, msg: "XML is not well-formed: " + err.Error()}
}

// streamObjects validates a manifest's root and hands each SPObject, with
// its subtree validated, to fn in document order.
func streamObjects(r io.Reader, file string, fn func(*node) error) error {
	sd := *manifestSchema
	sd.file = file
	dec := xml.NewDecoder(r)
	se, err := rootElement(dec, file)
	if err != nil {
		return err
	}
	root := newNode(dec, se)
	if err := sd.checkRoot(root); err != nil {
		return err
	}
	if len(root.rawAttrs) > 0 {
		return sd.failAt(root, "the '%s' attribute is not declared on element 'SPObjects'", root.rawAttrs[0].Name.Local)
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return xmlErr(file, dec, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n, err := readNode(dec, t)
			if err != nil {
				return xmlErr(file, dec, err)
			}
			if n.name.Local != "SPObject" || n.name.Space != sd.ns {
				return sd.failAt(n, "element 'SPObjects' has invalid child element '%s' (namespace '%s')", n.name.Local, n.name.Space)
			}
			if err := sd.validate(n); err != nil {
				return err
			}
			if err := fn(n); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}
