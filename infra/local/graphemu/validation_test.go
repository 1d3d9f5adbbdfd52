package graphemu_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
)

// Outcomes of spec §9.4, as tagged there.
const (
	fatal    = "fatalError" // job-level: Error fatalError, then final Progress
	objError = "error"      // object-level error, job goes on
	warning  = "warning"    // warning counted, job succeeds
)

type rule struct {
	name    string
	knobs   func(*graphemu.Config)
	fresh   bool // needs an empty drive
	mutate  func(p *pkg)
	level   string // expected outcome
	objType string // for object errors / warnings on an object
	objURL  string
	msg     string // substring of the message
	// check runs extra assertions against the emulator after the job.
	check func(t *testing.T, e *emu, evs []map[string]any)
}

func replaceIn(p *pkg, file, old, new string) {
	s := string(p.meta[file])
	if !strings.Contains(s, old) {
		panic(fmt.Sprintf("%s does not contain %q", file, old))
	}
	p.meta[file] = []byte(strings.Replace(s, old, new, 1))
}

// manifestParts splits the example manifest into header, folder objects,
// file objects and footer.
func manifestParts() (head, folder, file, foot string) {
	m := exManifest
	i := strings.Index(m, "  <!-- New folder")
	j := strings.Index(m, "  <!-- File Contracts")
	k := strings.Index(m, "</SPObjects>")
	return m[:i], m[i:j], m[j:k], m[k:]
}

const fileURL = "Document Library/Contracts/nda.pdf"

func TestValidationRules(t *testing.T) {
	rules := []rule{
		// §9.4 step 2: decryption of manifests is job-level.
		{name: "missing IV on a manifest", mutate: func(p *pkg) { p.noIV["Manifest.xml"] = true }, level: fatal, msg: "Cannot decrypt Manifest.xml: blob has no IV metadata"},
		{name: "IV not base64", mutate: func(p *pkg) { p.ivOverride["SystemData.xml"] = "not*base64!" }, level: fatal, msg: "IV metadata is not base64"},
		{name: "IV of wrong length", mutate: func(p *pkg) { p.ivOverride["UserGroup.xml"] = base64.StdEncoding.EncodeToString(make([]byte, 8)) }, level: fatal, msg: "decodes to 8 bytes, want 16"},
		{name: "padding failure (encrypted with another key)", mutate: func(p *pkg) { p.key = randKey() }, level: fatal, msg: "invalid PKCS#7 padding"},
		// Step 3: file presence.
		{name: "missing ExportSettings.xml", mutate: func(p *pkg) { delete(p.meta, "ExportSettings.xml") }, level: fatal, msg: "Required file ExportSettings.xml is missing"},
		{name: "missing SystemData.xml", mutate: func(p *pkg) { delete(p.meta, "SystemData.xml") }, level: fatal, msg: "Required file SystemData.xml is missing"},
		{name: "missing UserGroup.xml", mutate: func(p *pkg) { delete(p.meta, "UserGroup.xml") }, level: fatal, msg: "Required file UserGroup.xml is missing"},
		{name: "missing manifest listed in SystemData", mutate: func(p *pkg) {
			replaceIn(p, "SystemData.xml", `<ManifestFile Name="Manifest.xml" />`, `<ManifestFile Name="Manifest.xml" /><ManifestFile Name="Manifest2.xml" />`)
		}, level: fatal, msg: "Manifest file Manifest2.xml listed in SystemData.xml is missing"},
		{name: "UserGroupMap.xml alias", mutate: func(p *pkg) { p.meta["UserGroupMap.xml"] = p.meta["UserGroup.xml"]; delete(p.meta, "UserGroup.xml") }, level: warning, msg: "UserGroupMap.xml was used"},
		{name: "missing RootObjectMap.xml (default warning)", mutate: func(p *pkg) { delete(p.meta, "RootObjectMap.xml") }, level: warning, msg: "RootObjectMap.xml is missing"},
		{name: "missing RootObjectMap.xml (knob fatal)", knobs: func(c *graphemu.Config) { c.Knobs.MissingRootObjectMap = "fatal" },
			mutate: func(p *pkg) { delete(p.meta, "RootObjectMap.xml") }, level: fatal, msg: "Required file RootObjectMap.xml is missing"},
		{name: "missing LookupListMap.xml", mutate: func(p *pkg) { delete(p.meta, "LookupListMap.xml") }, level: warning, msg: "LookupListMap.xml is missing"},
		{name: "missing Requirements.xml", mutate: func(p *pkg) { delete(p.meta, "Requirements.xml") }, level: warning, msg: "Requirements.xml is missing"},
		{name: "missing ViewFormsList.xml", mutate: func(p *pkg) { delete(p.meta, "ViewFormsList.xml") }, level: warning, msg: "ViewFormsList.xml is missing"},
		{name: "un-namespaced LookupListMap", mutate: func(p *pkg) { p.meta["LookupListMap.xml"] = []byte(`<?xml version="1.0"?><LookupListMap/>`) }, level: warning, msg: "un-namespaced"},
		// Step 4: schema.
		{name: "wrong namespace", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `xmlns="urn:deployment-manifest-schema"`, `xmlns="urn:deployment-manifest"`)
		}, level: fatal, msg: "namespace 'urn:deployment-manifest'"},
		{name: "wrong root element", mutate: func(p *pkg) {
			p.meta["Requirements.xml"] = []byte(`<?xml version="1.0"?><Requirement xmlns="urn:deployment-requirements-schema" />`)
		}, level: fatal, msg: "the root element is 'Requirement'"},
		{name: "XML not well-formed", mutate: func(p *pkg) { replaceIn(p, "Manifest.xml", "</SPObjects>", "</SPObject>") }, level: fatal, msg: "not well-formed"},
		{name: "unknown attribute on Folder", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `<Folder Id=`, `<Folder Colour="blue" Id=`)
		}, level: fatal, msg: "Manifest.xml(14,114): the 'Colour' attribute is not declared on element 'Folder'"},
		{name: "unknown attribute on File is allowed", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `<File Id=`, `<File MD5Hash="abc" ScopeId="x" Id=`)
		}, level: ""},
		{name: "bad ObjectType enumeration", mutate: func(p *pkg) { replaceIn(p, "Manifest.xml", `ObjectType="SPFolder"`, `ObjectType="Folder"`) }, level: fatal, msg: "the enumeration allows"},
		{name: "bad DocType enumeration", mutate: func(p *pkg) { replaceIn(p, "Manifest.xml", `DocType="Folder"`, `DocType="Directory"`) }, level: fatal, msg: "'DocType' attribute of 'ListItem'"},
		{name: "bad IncludeSecurity enumeration", mutate: func(p *pkg) { replaceIn(p, "ExportSettings.xml", `IncludeSecurity="None"`, `IncludeSecurity="Some"`) }, level: fatal, msg: "ExportSettings.xml"},
		{name: "bad dateTime", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `TimeCreated="2019-04-02T08:00:00"`, `TimeCreated="02/04/2019 08:00"`)
		}, level: fatal, msg: "not an xs:dateTime"},
		{name: "bad int", mutate: func(p *pkg) { replaceIn(p, "Manifest.xml", `ListItemIntId="1001"`, `ListItemIntId="one"`) }, level: fatal, msg: "not an xs:int"},
		{name: "bad boolean", mutate: func(p *pkg) { replaceIn(p, "UserGroup.xml", `IsDeleted="true"`, `IsDeleted="yes"`) }, level: fatal, msg: "not an xs:boolean"},
		{name: "child element not matching ObjectType", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `ObjectType="SPFolder"`, `ObjectType="SPFile"`)
		}, level: fatal, msg: "has child element 'Folder'; want 'File'"},
		{name: "two child elements in SPObject", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `TimeLastModified="2023-01-15T17:45:10" Author="1" ModifiedBy="1" />`, `TimeLastModified="2023-01-15T17:45:10" Author="1" ModifiedBy="1" /><Folder Id="x"/>`)
		}, level: fatal, msg: "at most one is allowed"},
		// Step 5: semantics.
		{name: "missing SiteUrl", mutate: func(p *pkg) {
			replaceIn(p, "ExportSettings.xml", `SiteUrl="https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04"`, ``)
		}, level: fatal, msg: "SiteUrl attribute is required"},
		{name: "missing SourceType (default fatal)", mutate: func(p *pkg) { replaceIn(p, "ExportSettings.xml", `SourceType="AzureStorage"`, ``) }, level: fatal, msg: "SourceType attribute is required"},
		{name: "missing SourceType (knob warning)", knobs: func(c *graphemu.Config) { c.Knobs.MissingSourceType = "warning" },
			mutate: func(p *pkg) { replaceIn(p, "ExportSettings.xml", `SourceType="AzureStorage"`, ``) }, level: warning, msg: "SourceType attribute is missing"},
		{name: "SourceType not allowed", mutate: func(p *pkg) { replaceIn(p, "ExportSettings.xml", `SourceType="AzureStorage"`, `SourceType="Floppy"`) }, level: fatal, msg: "SourceType 'Floppy'"},
		{name: "SchemaVersion not 15", mutate: func(p *pkg) { replaceIn(p, "SystemData.xml", `SiteVersion="15"`, `SiteVersion="14"`) }, level: warning, msg: "SchemaVersion"},
		{name: "web id mismatch", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `ParentWebId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d"
            ParentWebUrl="/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04"
            ContainingDocumentLibrary`, `ParentWebId="00000000-9f2a-4c6e-8b0d-1a3c5e7f9b2d"
            ParentWebUrl="/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04"
            ContainingDocumentLibrary`)
		}, level: fatal, msg: "does not match the container's web id"},
		{name: "list id mismatch", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `ListItemIntId="1002" ListId="5c3a9f1e`, `ListItemIntId="1002" ListId="00000000`)
		}, level: fatal, msg: "ListId='00000000-2b7d-4e6a-8f01-9d2c4b6a8e10' does not match the container's list id"},
		{name: "RootObject list id mismatch", mutate: func(p *pkg) { replaceIn(p, "RootObjectMap.xml", `Id="5c3a9f1e`, `Id="00000000`) }, level: fatal, msg: "RootObjectMap.xml: the List root object"},
		{name: "library and root folder described (older packages)", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `  <!-- New folder`, `  <SPObject Id="5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10" ObjectType="SPDocumentLibrary" ParentId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d" ParentWebId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d">
    <DocumentLibrary Id="5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10" Title="Documents" RootFolderId="0e9d8c7b-6a5f-4e3d-2c1b-a09f8e7d6c5b" RootFolderUrl="Document Library" ParentWebId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d" BaseType="DocumentLibrary" BaseTemplate="101" />
  </SPObject>
  <SPObject Id="0e9d8c7b-6a5f-4e3d-2c1b-a09f8e7d6c5b" ObjectType="SPFolder" ParentWebId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d">
    <Folder Id="0e9d8c7b-6a5f-4e3d-2c1b-a09f8e7d6c5b" Name="Document Library" Url="Document Library" ContainingDocumentLibrary="5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10" />
  </SPObject>
  <!-- New folder`)
		}, level: ""},
		{name: "library described with another list id", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `  <!-- New folder`, `  <SPObject Id="00000000-2b7d-4e6a-8f01-9d2c4b6a8e10" ObjectType="SPDocumentLibrary">
    <DocumentLibrary Id="00000000-2b7d-4e6a-8f01-9d2c4b6a8e10" Title="Documents" BaseType="DocumentLibrary" />
  </SPObject>
  <!-- New folder`)
		}, level: fatal, msg: "DocumentLibrary Id='00000000-2b7d-4e6a-8f01-9d2c4b6a8e10' does not match the container's list id"},
		{name: "duplicate user id", mutate: func(p *pkg) {
			replaceIn(p, "UserGroup.xml", `</Users>`, `<User Id="1" Name="Alice Again" Login="i:0#.f|membership|alice2@contoso.com" /></Users>`)
		}, level: fatal, msg: "duplicate user Id 1"},
		{name: "duplicate user login", mutate: func(p *pkg) {
			replaceIn(p, "UserGroup.xml", `</Users>`, `<User Id="3" Name="Alice Again" Login="I:0#.F|membership|ALICE@contoso.com" /></Users>`)
		}, level: fatal, msg: "duplicate user Login"},
		// Step 6: objects.
		{name: "FileValue blob missing", fresh: true, mutate: func(p *pkg) { delete(p.data, "src/0001.bin") }, level: objError, objType: "file", objURL: fileURL,
			msg: "FileValue 'src/0001.bin' (version 1.0) was not found in the data container",
			check: func(t *testing.T, e *emu, _ []map[string]any) {
				if r := e.do("GET", "/v1.0/drives/"+e.cid+"/root:/Contracts/nda.pdf", nil); r.status != 404 {
					t.Errorf("file with a missing version was imported: %d", r.status)
				}
				if r := e.do("GET", "/v1.0/drives/"+e.cid+"/root:/Contracts", nil); r.status != 200 {
					t.Errorf("folder not imported: %d", r.status)
				}
			}},
		{name: "FileValue attribute absent", mutate: func(p *pkg) { replaceIn(p, "Manifest.xml", `FileValue="src/0002.bin"`, ``) }, level: objError, objType: "file", objURL: fileURL, msg: "has no FileValue"},
		{name: "content blob without IV", mutate: func(p *pkg) { p.noIV["src/0002.bin"] = true }, level: objError, objType: "file", objURL: fileURL, msg: "Cannot decrypt FileValue 'src/0002.bin'"},
		{name: "content blob without snapshot (default warning)", mutate: func(p *pkg) { p.noSnapshot["src/0001.bin"] = true }, level: warning, objType: "file", objURL: fileURL, msg: "has no snapshot"},
		{name: "content blob without snapshot (knob error)", knobs: func(c *graphemu.Config) { c.Knobs.RequireSnapshots = true },
			mutate: func(p *pkg) { p.noSnapshot["src/0001.bin"] = true }, level: objError, objType: "file", objURL: fileURL, msg: "has no snapshot"},
		{name: "FileSize differs", mutate: func(p *pkg) { replaceIn(p, "Manifest.xml", `FileSize="19874"`, `FileSize="20000"`) }, level: warning, objType: "file", objURL: fileURL, msg: "FileSize 20000 of version 2.0 differs"},
		{name: "parent folder after its child", fresh: true, mutate: func(p *pkg) {
			h, folder, file, f := manifestParts()
			p.meta["Manifest.xml"] = []byte(h + file + folder + f)
		}, level: objError, objType: "file", objURL: fileURL, msg: "Parent folder 3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e was not found"},
		{name: "ids with braces and upper case", fresh: true, mutate: func(p *pkg) {
			s := string(p.meta["Manifest.xml"])
			s = strings.ReplaceAll(s, `Id="3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e"`, `Id="{3A6F0C2E-1D4B-4F7A-9E8C-2B5D7F9A1C3E}"`)
			s = strings.ReplaceAll(s, `ParentId="3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e"`, `ParentId="{3A6F0C2E-1D4B-4F7A-9E8C-2B5D7F9A1C3E}"`)
			p.meta["Manifest.xml"] = []byte(s)
		}, level: ""},
		{name: "folder moved into its own subfolder", fresh: true, mutate: func(p *pkg) {
			sub := `  <SPObject Id="aaaaaaaa-0000-4000-8000-000000000001" ObjectType="SPFolder" ParentId="3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e">
    <Folder Id="aaaaaaaa-0000-4000-8000-000000000001" Name="Sub" Url="Document Library/Contracts/Sub" ParentFolderId="3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e" />
  </SPObject>
  <SPObject Id="3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e" ObjectType="SPFolder" ParentId="aaaaaaaa-0000-4000-8000-000000000001">
    <Folder Id="3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e" Name="Contracts" ParentFolderId="aaaaaaaa-0000-4000-8000-000000000001" />
  </SPObject>
`
			replaceIn(p, "Manifest.xml", "</SPObjects>", sub+"</SPObjects>")
		}, level: objError, objType: "folder", objURL: "Document Library/Contracts/Sub/Contracts", msg: "cannot be moved into its own subfolder"},
		{name: "ListItem DocId references nothing", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `DocType="File" DocId="9b8a7c6d`, `DocType="File" DocId="00000000`)
		}, level: objError, objType: "listItem", objURL: fileURL, msg: "references no File or Folder"},
		{name: "ListItem ParentFolderId differs from the file's", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `DirName="Document Library/Contracts"
              ParentFolderId="3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e"`, `DirName="Document Library/Contracts"
              ParentFolderId="0e9d8c7b-6a5f-4e3d-2c1b-a09f8e7d6c5b"`)
		}, level: objError, objType: "listItem", objURL: fileURL, msg: "ParentFolderId"},
		{name: "File Url disagrees with ParentId and Name", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `<File Id="9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d" Name="nda.pdf" Url="Document Library/Contracts/nda.pdf"`,
				`<File Id="9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d" Name="nda.pdf" Url="Shared Documents/Contracts/nda.pdf"`)
		}, level: warning, objType: "file", objURL: "Shared Documents/Contracts/nda.pdf", msg: "does not match the item's location 'Document Library/Contracts/nda.pdf'"},
		{name: "ListItem DirName disagrees", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `DirName="Document Library/Contracts"`, `DirName="Document Library/Other"`)
		}, level: warning, objType: "listItem", objURL: fileURL, msg: "Url 'Document Library/Other' does not match"},
		{name: "ParentWebUrl not the container's web", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `ParentWebUrl="/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04"
          Version="2.0"`, `ParentWebUrl="/sites/elsewhere"
          Version="2.0"`)
		}, level: warning, objType: "file", objURL: fileURL, msg: "ParentWebUrl '/sites/elsewhere'"},
		{name: "URLs in other accepted spellings", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `<File Id="9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d" Name="nda.pdf" Url="Document Library/Contracts/nda.pdf"`,
				`<File Id="9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d" Name="nda.pdf" Url="/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04/document%20library/Contracts/NDA.pdf/"`)
		}, level: ""},
		{name: "ListItem IntId differs from ListItemIntId", mutate: func(p *pkg) { replaceIn(p, "Manifest.xml", ` IntId="1002" Order`, ` IntId="1003" Order`) }, level: warning, objType: "listItem", objURL: fileURL, msg: "IntId 1003 differs"},
		{name: "unknown list field", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `Version="2.0" TimeCreated="2021-06-01T09:30:00" TimeLastModified="2022-02-10T14:05:33" Author="1" ModifiedBy="2">
      <Fields />`, `Version="2.0" TimeCreated="2021-06-01T09:30:00" TimeLastModified="2022-02-10T14:05:33" Author="1" ModifiedBy="2">
      <Fields><Field Name="Colour" Value="blue" /><Field Name="Title" Value="NDA" /></Fields>`)
		}, level: warning, objType: "listItem", objURL: fileURL, msg: "Field 'Colour' does not exist"},
		{name: "Author not in UserGroup.xml", mutate: func(p *pkg) {
			replaceIn(p, "Manifest.xml", `Version="2.0" FileValue="src/0002.bin" FileSize="19874"
          TimeCreated="2021-06-01T09:30:00" TimeLastModified="2022-02-10T14:05:33" Author="1" ModifiedBy="2"`, `Version="2.0" FileValue="src/0002.bin" FileSize="19874"
          TimeCreated="2021-06-01T09:30:00" TimeLastModified="2022-02-10T14:05:33" Author="1" ModifiedBy="9"`)
		},
			level: warning, objType: "file", objURL: fileURL, msg: "User id 9 is not declared",
			check: func(t *testing.T, e *emu, _ []map[string]any) {
				f := e.do("GET", "/v1.0/drives/"+e.cid+"/root:/Contracts/nda.pdf:", nil).json(t)
				if displayName(f["lastModifiedBy"]) != "System Account" {
					t.Errorf("lastModifiedBy = %v, want System Account", f["lastModifiedBy"])
				}
			}},
		{name: "unresolvable login without SystemId", knobs: func(c *graphemu.Config) { c.Knobs.Directory = []string{"i:0#.f|membership|alice@contoso.com"} },
			mutate: func(p *pkg) { replaceIn(p, "UserGroup.xml", `IsDeleted="true"`, `IsDeleted="false"`) },
			level:  warning, objType: "file", objURL: fileURL, msg: "Failed to ensure user 'i:0#.f|membership|bob@contoso.com'",
			check: func(t *testing.T, e *emu, _ []map[string]any) {
				f := e.do("GET", "/v1.0/drives/"+e.cid+"/root:/Contracts/nda.pdf:", nil).json(t)
				if displayName(f["lastModifiedBy"]) != "System Account" {
					t.Errorf("lastModifiedBy = %v, want System Account", f["lastModifiedBy"])
				}
			}},
		{name: "unresolvable login with SystemId", knobs: func(c *graphemu.Config) { c.Knobs.Directory = []string{"i:0#.f|membership|alice@contoso.com"} },
			mutate: func(p *pkg) {
				replaceIn(p, "UserGroup.xml", `IsDeleted="true"`, `IsDeleted="false" SystemId="AQUAAAAAAAUVAAAA"`)
			},
			level: warning, objType: "file", objURL: fileURL, msg: "Failed to retrieve user 'i:0#.f|membership|bob@contoso.com' attributes from the SiteUsers; falling back to passed in values",
			check: func(t *testing.T, e *emu, _ []map[string]any) {
				f := e.do("GET", "/v1.0/drives/"+e.cid+"/root:/Contracts/nda.pdf:", nil).json(t)
				if displayName(f["lastModifiedBy"]) != "Former Employee" {
					t.Errorf("lastModifiedBy = %v, want the passed-in user", f["lastModifiedBy"])
				}
			}},
	}
	shared := newEmu(t, nil)
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			e := shared
			if r.knobs != nil || r.fresh {
				e = newEmu(t, r.knobs)
			}
			e.t = t
			ci := e.provision()
			p := examplePkg()
			if r.mutate != nil {
				r.mutate(p)
			}
			p.upload(t, ci)
			evs := e.waitDone(e.mustCreateJob(ci))
			assertOutcome(t, evs, r)
			if r.check != nil {
				r.check(t, e, evs)
			}
		})
	}
}

// assertOutcome checks that the job ended with exactly the documented
// outcome and that the final counters agree with the error events.
func assertOutcome(t *testing.T, evs []map[string]any, r rule) {
	t.Helper()
	final := evs[len(evs)-1]
	var errs, warns, fatals int
	var match map[string]any
	for _, ev := range ofType(evs, "sharePointMigrationJobErrorEvent") {
		lvl := ev["errorLevel"].(string)
		switch lvl {
		case "warning":
			warns++
		case "error":
			errs++
		case "fatalError":
			fatals++
		}
		msg := ev["error"].(map[string]any)["message"].(string)
		if lvl == r.level && r.msg != "" && strings.Contains(msg, r.msg) {
			match = ev
		}
	}
	if final["totalErrors"] != float64(errs+fatals) || final["totalWarnings"] != float64(warns) {
		t.Errorf("final counters errors=%v warnings=%v; events show %d errors, %d fatal, %d warnings", final["totalErrors"], final["totalWarnings"], errs, fatals, warns)
	}
	switch r.level {
	case "":
		if errs+fatals+warns != 0 {
			t.Errorf("want a clean import; got %d errors, %d fatal, %d warnings: %v", errs, fatals, warns, ofType(evs, "sharePointMigrationJobErrorEvent"))
		}
		return
	case fatal:
		if fatals != 1 || errs != 0 {
			t.Errorf("want exactly one fatal error; got %d fatal, %d errors", fatals, errs)
		}
		if final["objectsProcessed"] != float64(0) {
			t.Errorf("a fatal package error must import nothing; objectsProcessed=%v", final["objectsProcessed"])
		}
	case objError:
		if fatals != 0 || errs == 0 {
			t.Errorf("want object errors and no fatal; got %d errors, %d fatal", errs, fatals)
		}
	case warning:
		if fatals != 0 || errs != 0 {
			t.Errorf("want only warnings; got %d errors, %d fatal", errs, fatals)
		}
	}
	if match == nil {
		t.Fatalf("no %s event with message containing %q; events: %v", r.level, r.msg, ofType(evs, "sharePointMigrationJobErrorEvent"))
	}
	if r.level == fatal && match["objectType"] != "invalid" {
		t.Errorf("fatal error objectType = %v, want invalid", match["objectType"])
	}
	if r.objType != "" && (match["objectType"] != r.objType || match["objectUrl"] != r.objURL) {
		t.Errorf("event object = %v %v, want %s %s", match["objectType"], match["objectUrl"], r.objType, r.objURL)
	}
	if !isFinal(final) {
		t.Errorf("last event is not the completion event")
	}
}

func randKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

func TestCreateJobSynchronousChecks(t *testing.T) {
	e := newEmu(t, nil)
	jobs := e.containerPath(e.cid) + "/migrationJobs"
	ci := e.provision()
	other := *e
	other.cid = otherContainer().ID
	otherCI := other.provision()
	sig := func(u string) string { return strings.Replace(u, "sig=", "sig=AAAA", 1) }
	cases := []struct {
		name            string
		body            any
		status          int
		code, innerCode string
	}{
		{"no containerInfo", map[string]any{}, 400, "invalidRequest", ""},
		{"no encryptionKey", map[string]any{"containerInfo": map[string]any{"dataContainerUri": ci.DataContainerURI, "metadataContainerUri": ci.MetadataContainerURI}}, 400, "invalidRequest", ""},
		{"key not 32 bytes", map[string]any{"containerInfo": containerInfo{ci.DataContainerURI, ci.MetadataContainerURI, base64.StdEncoding.EncodeToString([]byte("short"))}}, 400, "migrationBadRequest", "invalidAzureResource"},
		{"wrong key (default sync)", map[string]any{"containerInfo": containerInfo{ci.DataContainerURI, ci.MetadataContainerURI, base64.StdEncoding.EncodeToString(randKey())}}, 400, "migrationBadRequest", "invalidAzureResource"},
		{"container not provisioned", map[string]any{"containerInfo": containerInfo{strings.Replace(ci.DataContainerURI, ci.DataContainerURI[strings.LastIndex(ci.DataContainerURI[:strings.Index(ci.DataContainerURI, "?")], "/")+1:strings.Index(ci.DataContainerURI, "?")], "0123456789abcdef0123456789abcdef", 1), ci.MetadataContainerURI, ci.EncryptionKey}}, 400, "migrationBadRequest", "invalidAzureResource"},
		{"SAS signature tampered", map[string]any{"containerInfo": containerInfo{sig(ci.DataContainerURI), ci.MetadataContainerURI, ci.EncryptionKey}}, 400, "migrationBadRequest", "invalidAzureResource"},
		{"containers of another SPE container", map[string]any{"containerInfo": otherCI}, 400, "migrationBadRequest", "invalidAzureResource"},
		{"data and metadata swapped", map[string]any{"containerInfo": containerInfo{ci.MetadataContainerURI, ci.DataContainerURI, ci.EncryptionKey}}, 400, "migrationBadRequest", "invalidAzureResource"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", jobs, c.body)
			code, inner := r.errCodes(t)
			if r.status != c.status || code != c.code || inner != c.innerCode {
				t.Errorf("got %d %s/%s, want %d %s/%s: %s", r.status, code, inner, c.status, c.code, c.innerCode, r.body)
			}
		})
	}
	t.Run("expired SAS", func(t *testing.T) {
		ci := e.provision()
		e.clk.advance(73 * time.Hour)
		defer e.clk.advance(-73 * time.Hour)
		r := e.createJob(ci)
		if code, inner := r.errCodes(t); r.status != 400 || code != "migrationBadRequest" || inner != "invalidAzureResource" || !strings.Contains(string(r.body), "expired") {
			t.Errorf("got %d %s/%s: %s", r.status, code, inner, r.body)
		}
	})
	t.Run("less SAS validity than MinSASRemaining (knob)", func(t *testing.T) {
		e := newEmu(t, func(c *graphemu.Config) { c.Knobs.MinSASRemaining = 80 * time.Hour })
		r := e.createJob(e.provision())
		if code, inner := r.errCodes(t); r.status != 400 || inner != "invalidAzureResource" {
			t.Errorf("got %d %s/%s", r.status, code, inner)
		}
	})
	t.Run("second job on the same containers (knob OneJobPerContainerPair)", func(t *testing.T) {
		e := newEmu(t, func(c *graphemu.Config) { c.Knobs.OneJobPerContainerPair = true })
		ci := e.provision()
		examplePkg().upload(t, ci)
		e.mustCreateJob(ci)
		if r := e.createJob(ci); r.status != 400 {
			t.Errorf("second job: %d, want 400", r.status)
		}
	})
	t.Run("second job on the same containers (default allowed)", func(t *testing.T) {
		ci := e.provision()
		examplePkg().upload(t, ci)
		e.waitDone(e.mustCreateJob(ci))
		e.waitDone(e.mustCreateJob(ci))
	})
	t.Run("wrong key (knob async) is a fatal job error", func(t *testing.T) {
		e := newEmu(t, func(c *graphemu.Config) { c.Knobs.WrongKey = "async" })
		ci := e.provision()
		examplePkg().upload(t, ci)
		ci.EncryptionKey = base64.StdEncoding.EncodeToString(randKey())
		evs := e.waitDone(e.mustCreateJob(ci))
		assertOutcome(t, evs, rule{level: fatal, msg: "Cannot decrypt"})
	})
	t.Run("unknown container is 404 on every route", func(t *testing.T) {
		base := e.containerPath("b!nope")
		for _, c := range []struct{ method, path string }{
			{"POST", base + "/provisionMigrationContainers"}, {"POST", base + "/migrationJobs"},
			{"DELETE", base + "/migrationJobs/x"}, {"GET", base + "/migrationJobs/x/progressEvents"},
		} {
			if r := e.do(c.method, c.path, map[string]any{}); r.status != 404 {
				t.Errorf("%s %s: %d", c.method, c.path, r.status)
			}
		}
	})
}
