package graphemu_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// The worked example of spec §6.11, written out by hand.
const (
	exWeb    = "b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d"
	exList   = "5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10"
	exRoot   = "0e9d8c7b-6a5f-4e3d-2c1b-a09f8e7d6c5b"
	exFolder = "3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e"
	exFile   = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
)

const exExportSettings = `<?xml version="1.0" encoding="utf-8"?>
<ExportSettings xmlns="urn:deployment-exportsettings-schema"
  SiteUrl="https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04"
  FileLocation="" IncludeSecurity="None" IncludeVersions="All" SourceType="AzureStorage">
  <ExportObjects>
    <DeploymentObject Id="5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10" Type="List" ParentId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d" />
  </ExportObjects>
</ExportSettings>`

const exSystemData = `<?xml version="1.0" encoding="utf-8"?>
<SystemData xmlns="urn:deployment-systemdata-schema">
  <SchemaVersion Version="15.0.0.0" Build="16.0.3111.1200" DatabaseVersion="11552" SiteVersion="15" />
  <ManifestFiles>
    <ManifestFile Name="Manifest.xml" />
  </ManifestFiles>
  <SystemObjects>
    <SystemObject Id="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d" Type="Web" Url="/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04" />
  </SystemObjects>
  <RootWebOnlyLists />
</SystemData>`

const exRootObjectMap = `<?xml version="1.0" encoding="utf-8"?>
<RootObjects xmlns="urn:deployment-rootobjectmap-schema">
  <RootObject Id="5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10" Type="List" ParentId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d"
    WebUrl="/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04"
    Url="/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04/Document Library" IsDependency="false" />
</RootObjects>`

const exUserGroup = `<?xml version="1.0" encoding="utf-8"?>
<UserGroupMap xmlns="urn:deployment-usergroupmap-schema">
  <Users>
    <User Id="1" Name="Alice Example" Login="i:0#.f|membership|alice@contoso.com" Email="alice@contoso.com"
          IsDomainGroup="false" IsSiteAdmin="false" IsDeleted="false" Flags="0" />
    <User Id="2" Name="Former Employee" Login="i:0#.f|membership|bob@contoso.com" Email="bob@contoso.com"
          IsDomainGroup="false" IsSiteAdmin="false" IsDeleted="true" Flags="0" />
  </Users>
  <Groups />
</UserGroupMap>`

const (
	exLookup       = `<?xml version="1.0" encoding="utf-8"?><LookupLists xmlns="urn:deployment-lookuplistmap-schema" />`
	exRequirements = `<?xml version="1.0" encoding="utf-8"?><Requirements xmlns="urn:deployment-requirements-schema" />`
	exViewForms    = `<?xml version="1.0" encoding="utf-8"?><ViewFormsList xmlns="urn:deployment-viewformlist-schema" />`
)

const exManifest = `<?xml version="1.0" encoding="utf-8"?>
<SPObjects xmlns="urn:deployment-manifest-schema">
  <!-- New folder "Contracts" under the library root -->
  <SPObject Id="3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e" ObjectType="SPFolder"
            ParentId="0e9d8c7b-6a5f-4e3d-2c1b-a09f8e7d6c5b"
            ParentWebId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d"
            ParentWebUrl="/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04"
            Url="https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04/Document Library/Contracts">
    <Folder Id="3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e" Name="Contracts" Url="Document Library/Contracts"
            ParentFolderId="0e9d8c7b-6a5f-4e3d-2c1b-a09f8e7d6c5b"
            ParentWebId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d"
            ParentWebUrl="/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04"
            ContainingDocumentLibrary="5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10" ListItemIntId="1001"
            TimeCreated="2019-04-02T08:00:00" TimeLastModified="2023-01-15T17:45:10" Author="1" ModifiedBy="1" />
  </SPObject>
  <SPObject Id="c4d2e6f8-0a1b-4c3d-8e5f-7a9b1c3d5e7f" ObjectType="SPListItem"
            ParentId="5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10"
            ParentWebId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d"
            ParentWebUrl="/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04"
            Url="https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04/Document Library/Contracts">
    <ListItem Id="c4d2e6f8-0a1b-4c3d-8e5f-7a9b1c3d5e7f" DocType="Folder" DocId="3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e"
              IntId="1001" Order="100100" Name="Contracts" FileUrl="Document Library/Contracts" DirName="Document Library"
              ParentFolderId="0e9d8c7b-6a5f-4e3d-2c1b-a09f8e7d6c5b"
              ParentWebId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d" ParentListId="5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10"
              TimeCreated="2019-04-02T08:00:00" TimeLastModified="2023-01-15T17:45:10" Author="1" ModifiedBy="1">
      <Fields />
    </ListItem>
  </SPObject>

  <!-- File Contracts/nda.pdf, current version 2.0, previous version 1.0 -->
  <SPObject Id="9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d" ObjectType="SPFile"
            ParentId="3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e"
            ParentWebId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d"
            ParentWebUrl="/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04"
            Url="https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04/Document Library/Contracts/nda.pdf">
    <File Id="9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d" Name="nda.pdf" Url="Document Library/Contracts/nda.pdf"
          ListItemIntId="1002" ListId="5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10"
          ParentId="3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e"
          ParentWebId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d"
          ParentWebUrl="/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04"
          Version="2.0" FileValue="src/0002.bin" FileSize="19874"
          TimeCreated="2021-06-01T09:30:00" TimeLastModified="2022-02-10T14:05:33" Author="1" ModifiedBy="2">
      <Versions>
        <File Id="9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d" Name="nda.pdf" Url="Document Library/Contracts/nda.pdf"
              ListItemIntId="1002" ListId="5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10"
              ParentId="3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e"
              ParentWebId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d"
              ParentWebUrl="/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04"
              Version="1.0" FileValue="src/0001.bin" FileSize="18211"
              TimeCreated="2021-06-01T09:30:00" TimeLastModified="2021-06-01T09:30:00" Author="1" ModifiedBy="1" />
      </Versions>
    </File>
  </SPObject>
  <SPObject Id="e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b" ObjectType="SPListItem"
            ParentId="5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10"
            ParentWebId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d"
            ParentWebUrl="/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04"
            Url="https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04/Document Library/Contracts/nda.pdf">
    <ListItem Id="e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b" DocType="File" DocId="9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
              IntId="1002" Order="100200" Name="nda.pdf" FileUrl="Document Library/Contracts/nda.pdf"
              DirName="Document Library/Contracts"
              ParentFolderId="3a6f0c2e-1d4b-4f7a-9e8c-2b5d7f9a1c3e"
              ParentWebId="b7e1c3d5-9f2a-4c6e-8b0d-1a3c5e7f9b2d" ParentListId="5c3a9f1e-2b7d-4e6a-8f01-9d2c4b6a8e10"
              Version="2.0" TimeCreated="2021-06-01T09:30:00" TimeLastModified="2022-02-10T14:05:33" Author="1" ModifiedBy="2">
      <Fields />
    </ListItem>
  </SPObject>
</SPObjects>`

// content makes deterministic plaintext of n bytes.
func content(seed byte, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// examplePkg is the §6.11 package, with both content versions.
func examplePkg() *pkg {
	p := newPkg()
	p.meta["ExportSettings.xml"] = []byte(exExportSettings)
	p.meta["SystemData.xml"] = []byte(exSystemData)
	p.meta["RootObjectMap.xml"] = []byte(exRootObjectMap)
	p.meta["UserGroup.xml"] = []byte(exUserGroup)
	p.meta["LookupListMap.xml"] = []byte(exLookup)
	p.meta["Requirements.xml"] = []byte(exRequirements)
	p.meta["ViewFormsList.xml"] = []byte(exViewForms)
	p.meta["Manifest.xml"] = []byte(exManifest)
	p.data["src/0001.bin"] = content(1, 18211)
	p.data["src/0002.bin"] = content(2, 19874)
	return p
}

func TestWorkedExampleImports(t *testing.T) {
	e := newEmu(t, nil)
	ci := e.provision()
	p := examplePkg()
	p.upload(t, ci)
	jobID := e.mustCreateJob(ci)
	evs := e.waitDone(jobID)

	types := []string{}
	for _, ev := range evs {
		types = append(types, strings.TrimPrefix(ev["@odata.type"].(string), "#microsoft.graph.sharePointMigration"))
	}
	if types[0] != "JobQueuedEvent" || types[1] != "JobStartEvent" {
		t.Fatalf("event sequence %v: want Queued, Start first", types)
	}
	for _, ev := range ofType(evs, "sharePointMigrationJobErrorEvent") {
		t.Errorf("unexpected error event: %v", ev)
	}
	final := evs[len(evs)-1]
	want := map[string]float64{"filesProcessed": 2, "filesProcessedOnlyCurrentVersion": 1, "bytesProcessed": 38085,
		"bytesProcessedOnlyCurrentVersion": 19874, "objectsProcessed": 6, "totalExpectedObjects": 6, "totalErrors": 0, "totalWarnings": 0}
	for k, v := range want {
		if final[k] != v {
			t.Errorf("final %s = %v, want %v", k, final[k], v)
		}
	}

	drive := "/v1.0/drives/" + e.cid
	// The root answers the id-resolution call of §2.6.
	root := e.do("GET", drive+"/root?$select=sharepointIds,webUrl", nil).json(t)
	ids := root["sharepointIds"].(map[string]any)
	if ids["webId"] != exWeb || ids["listId"] != exList || ids["listItemUniqueId"] != exRoot {
		t.Errorf("root sharepointIds = %v", ids)
	}
	if root["webUrl"] != "https://contoso.sharepoint.com/contentstorage/CSP_2f4c8e91-7d3a-4b6e-9c10-5a7b3e2d1f04/Document%20Library" {
		t.Errorf("root webUrl = %v", root["webUrl"])
	}
	if _, ok := root["id"]; ok {
		t.Errorf("$select not applied: %v", root)
	}

	folder := e.do("GET", drive+"/root:/Contracts", nil).json(t)
	if folder["eTag"] != `"{3A6F0C2E-1D4B-4F7A-9E8C-2B5D7F9A1C3E},1"` {
		t.Errorf("folder eTag = %v", folder["eTag"])
	}
	if folder["createdDateTime"] != "2019-04-02T08:00:00Z" || folder["lastModifiedDateTime"] != "2023-01-15T17:45:10Z" {
		t.Errorf("folder times = %v / %v", folder["createdDateTime"], folder["lastModifiedDateTime"])
	}
	if displayName(folder["createdBy"]) != "Alice Example" {
		t.Errorf("folder createdBy = %v", folder["createdBy"])
	}
	if folder["sharepointIds"].(map[string]any)["listItemId"] != "1001" {
		t.Errorf("folder listItemId = %v", folder["sharepointIds"])
	}

	file := e.do("GET", drive+"/root:/Contracts/nda.pdf:", nil).json(t)
	if file["eTag"] != `"{9B8A7C6D-5E4F-4A3B-8C2D-1E0F9A8B7C6D},1"` || file["sharepointIds"].(map[string]any)["listItemUniqueId"] != exFile {
		t.Errorf("file eTag/listItemUniqueId = %v / %v", file["eTag"], file["sharepointIds"])
	}
	// driveItem ids are opaque, as in Graph; the GUID is accepted too
	// unless the StrictItemIDs knob is set.
	fileID := file["id"].(string)
	if fileID == exFile || e.do("GET", drive+"/items/"+fileID, nil).status != 200 || e.do("GET", drive+"/items/"+exFile, nil).status != 200 {
		t.Errorf("item id %s: want an opaque id that resolves, and the GUID too (default)", fileID)
	}
	if file["createdDateTime"] != "2021-06-01T09:30:00Z" || file["lastModifiedDateTime"] != "2022-02-10T14:05:33Z" {
		t.Errorf("file times = %v / %v", file["createdDateTime"], file["lastModifiedDateTime"])
	}
	if displayName(file["createdBy"]) != "Alice Example" || displayName(file["lastModifiedBy"]) != "Former Employee" {
		t.Errorf("file authors = %v / %v", file["createdBy"], file["lastModifiedBy"])
	}
	if file["size"] != float64(19874) || file["sharepointIds"].(map[string]any)["listItemId"] != "1002" {
		t.Errorf("file size/listItemId = %v / %v", file["size"], file["sharepointIds"])
	}

	hashes := file["file"].(map[string]any)["hashes"].(map[string]any)
	if hashes["quickXorHash"] != qxh(p.data["src/0002.bin"]) || file["file"].(map[string]any)["mimeType"] != "application/pdf" {
		t.Errorf("file facet = %v", file["file"])
	}

	children := e.do("GET", drive+"/root:/Contracts:/children", nil).json(t)["value"].([]any)
	if len(children) != 1 || children[0].(map[string]any)["name"] != "nda.pdf" {
		t.Errorf("children of Contracts = %v", children)
	}
	rootKids := e.do("GET", drive+"/root/children", nil).json(t)["value"].([]any)
	if len(rootKids) != 1 || rootKids[0].(map[string]any)["name"] != "Contracts" {
		t.Errorf("children of root = %v", rootKids)
	}

	versions := e.do("GET", drive+"/root:/Contracts/nda.pdf:/versions", nil).json(t)["value"].([]any)
	if len(versions) != 2 || versions[0].(map[string]any)["id"] != "2.0" || versions[1].(map[string]any)["id"] != "1.0" {
		t.Fatalf("versions = %v", versions)
	}
	v1 := versions[1].(map[string]any)
	if v1["lastModifiedDateTime"] != "2021-06-01T09:30:00Z" || displayName(v1["lastModifiedBy"]) != "Alice Example" {
		t.Errorf("version 1.0 = %v", v1)
	}
	if got := e.do("GET", drive+"/root:/Contracts/nda.pdf:/content", nil).body; !bytes.Equal(got, p.data["src/0002.bin"]) {
		t.Errorf("current content differs (%d bytes)", len(got))
	}
	if got := e.do("GET", drive+"/root:/Contracts/nda.pdf:/versions/1.0/content", nil).body; !bytes.Equal(got, p.data["src/0001.bin"]) {
		t.Errorf("version 1.0 content differs (%d bytes)", len(got))
	}
	if got := e.do("GET", drive+"/root:/Contracts/nda.pdf:/content", nil).body; !bytes.Equal(got, p.data["src/0002.bin"]) {
		t.Errorf("content by path differs (%d bytes)", len(got))
	}

	// Logs are written back, encrypted with the job key (§7.5).
	log := readLog(t, ci, "Import-"+jobID+"-1.log")
	if !strings.Contains(log, "Job end") || strings.Count(log, "\tImported\n") != 4 || !strings.Contains(log, "\tfile\t"+exFile+"\tDocument Library/Contracts/nda.pdf\tImported") {
		t.Errorf("import log lacks the end line:\n%s", log)
	}

	// A finished job can no longer be deleted.
	r := e.do("DELETE", e.containerPath(e.cid)+"/migrationJobs/"+jobID, nil)
	if c, ic := r.errCodes(t); r.status != 404 || c != "migrationNotFound" || ic != "jobNotFound" {
		t.Errorf("delete finished job: %d %s/%s", r.status, c, ic)
	}

	// Re-importing the same package replaces the file (eTag version moves on).
	ci2 := e.provision()
	p.upload(t, ci2)
	e.waitDone(e.mustCreateJob(ci2))
	file = e.do("GET", drive+"/root:/Contracts/nda.pdf:", nil).json(t)
	if file["eTag"] != `"{9B8A7C6D-5E4F-4A3B-8C2D-1E0F9A8B7C6D},2"` {
		t.Errorf("after re-import eTag = %v", file["eTag"])
	}
	if vs := e.do("GET", drive+"/root:/Contracts/nda.pdf:/versions", nil).json(t)["value"].([]any); len(vs) != 2 {
		t.Errorf("after re-import %d versions, want 2 (replace, not append)", len(vs))
	}
}

func displayName(v any) string {
	m, _ := v.(map[string]any)
	u, _ := m["user"].(map[string]any)
	s, _ := u["displayName"].(string)
	return s
}

// readLog downloads and decrypts a log the emulator wrote.
func readLog(t *testing.T, ci containerInfo, name string) string {
	t.Helper()
	cc, err := container.NewClientWithNoCredential(ci.MetadataContainerURI, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cc.NewBlobClient(name).DownloadStream(context.Background(), nil)
	if err != nil {
		t.Fatalf("download %s: %v", name, err)
	}
	defer r.Body.Close()
	ct, _ := io.ReadAll(r.Body)
	var ivs string
	for k, v := range r.Metadata {
		if strings.EqualFold(k, "iv") {
			ivs = *v
		}
	}
	iv, _ := base64.StdEncoding.DecodeString(ivs)
	key, _ := base64.StdEncoding.DecodeString(ci.EncryptionKey)
	return string(decryptCBC(t, key, iv, ct))
}
