package graphemu

import (
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// fetchManifest decrypts a metadata blob into a temporary file. It returns
// "" when the blob does not exist.
func (im *importer) fetchManifest(ctx context.Context, name string) (string, error) {
	rc, _, missing, err := im.openBlob(ctx, im.meta, name, false, nil)
	if missing {
		return "", nil
	}
	var fe *errFatal
	if errors.As(err, &fe) {
		return "", fatalf("Cannot decrypt %s: %s", name, fe.msg)
	}
	if err != nil {
		return "", err
	}
	defer rc.Close()
	p := filepath.Join(im.tmp, "m-"+url.PathEscape(name))
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(f, rc); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fatalf("Cannot decrypt %s: %v", name, err)
	}
	return p, nil
}

func readDocFile(path string, sd *schemaDoc) (*node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := readDoc(f, sd)
	var se *schemaError
	if errors.As(err, &se) {
		return nil, fatalf("Manifest validation failed: %s", se)
	}
	if err != nil {
		return nil, fatalf("Manifest validation failed: %s: %v", sd.file, err)
	}
	return n, nil
}

var sourceTypes = []string{"AmazonS3", "AzureStorage", "Box", "Dropbox", "Egnyte", "FileShare", "GoogleCloudStorage", "GoogleDrive", "MicrosoftStream", "OneDrive", "SharePointOnline", "SharePointOnPremServer", "Other"}

// importPackage is §9.4 steps 2–7.
func (im *importer) importPackage(ctx context.Context) error {
	svc := im.s.blob.ServiceClient()
	im.data = svc.NewContainerClient(im.j.prov.data)
	im.meta = svc.NewContainerClient(im.j.prov.meta)
	paths, err := im.fetchSmallManifests(ctx)
	if err != nil {
		return err
	}
	manifests, err := im.checkSettings(paths)
	if err != nil {
		return err
	}
	if err := im.checkMaps(paths); err != nil {
		return err
	}
	if err := im.loadUsers(paths["UserGroup.xml"]); err != nil {
		return err
	}

	// Manifests, pass 1: schema, semantics, counts, ids.
	mpaths := make([]string, len(manifests))
	for i, name := range manifests {
		p, err := im.fetchManifest(ctx, name)
		if err != nil {
			return err
		}
		if p == "" {
			return fatalf("Manifest file %s listed in SystemData.xml is missing from the metadata container", name)
		}
		mpaths[i] = p
	}
	if p, err := im.fetchManifest(ctx, "ArchivedFiles.xml"); err != nil {
		return err
	} else if p != "" {
		if err := im.loadArchives(ctx, p); err != nil {
			return err
		}
	}
	im.pkgItems, im.fileParent, im.fileInt = map[string]string{}, map[string]string{}, map[string]int{}
	for i, p := range mpaths {
		if err := im.eachObject(p, manifests[i], im.check); err != nil {
			return err
		}
	}
	im.expectedObjects += int64(len(im.users))

	// Users count as processed objects.
	for range im.users {
		im.objects++
	}

	// Pass 2: objects in document order.
	for i, p := range mpaths {
		err := im.eachObject(p, manifests[i], func(n *node) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return im.apply(ctx, n)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// fetchSmallManifests decrypts the fixed-name manifests (§6.2) and applies
// the file-presence rules. It maps a file name to its decrypted copy, or "".
func (im *importer) fetchSmallManifests(ctx context.Context) (map[string]string, error) {
	k := im.s.cfg.Knobs

	paths := map[string]string{}
	for _, name := range []string{"ExportSettings.xml", "SystemData.xml", "UserGroup.xml", "RootObjectMap.xml", "LookupListMap.xml", "Requirements.xml", "ViewFormsList.xml"} {
		p, err := im.fetchManifest(ctx, name)
		if err != nil {
			return nil, err
		}
		paths[name] = p
	}
	if paths["UserGroup.xml"] == "" {
		p, err := im.fetchManifest(ctx, "UserGroupMap.xml")
		if err != nil {
			return nil, err
		}
		if p != "" {
			im.warn("invalid", "", "", "UserGroupMap.xml was used as the user map; name it UserGroup.xml")
		}
		paths["UserGroup.xml"] = p
	}
	for _, req := range []string{"ExportSettings.xml", "SystemData.xml", "UserGroup.xml"} {
		if paths[req] == "" {
			return nil, fatalf("Required file %s is missing from the metadata container", req)
		}
	}
	if paths["RootObjectMap.xml"] == "" {
		if k.MissingRootObjectMap == "fatal" {
			return nil, fatalf("Required file RootObjectMap.xml is missing from the metadata container")
		}
		im.warn("invalid", "", "", "RootObjectMap.xml is missing from the metadata container")
	}

	return paths, nil
}

// checkSettings validates ExportSettings.xml and SystemData.xml and returns
// the manifest names SystemData lists.
func (im *importer) checkSettings(paths map[string]string) ([]string, error) {
	k := im.s.cfg.Knobs
	// ExportSettings.
	es, err := readDocFile(paths["ExportSettings.xml"], exportSettingsSchema)
	if err != nil {
		return nil, err
	}
	if es.attr("SiteUrl") == "" {
		return nil, fatalf("ExportSettings.xml: the SiteUrl attribute is required")
	}
	if st := es.attr("SourceType"); st == "" {
		if k.MissingSourceType == "fatal" {
			return nil, fatalf("ExportSettings.xml: the SourceType attribute is required (one of %s)", strings.Join(sourceTypes, ", "))
		}
		im.warn("invalid", "", "", "ExportSettings.xml: the SourceType attribute is missing")
	} else if !contains(sourceTypes, st) {
		return nil, fatalf("ExportSettings.xml: SourceType '%s' is not one of %s", st, strings.Join(sourceTypes, ", "))
	}

	// SystemData.
	sd, err := readDocFile(paths["SystemData.xml"], systemDataSchema)
	if err != nil {
		return nil, err
	}
	if sv := sd.kid("SchemaVersion"); sv == nil || sv.attr("Version") != "15.0.0.0" || sv.attr("SiteVersion") != "15" {
		im.warn("invalid", "", "", "SystemData.xml: SchemaVersion should have Version=\"15.0.0.0\" and SiteVersion=\"15\"")
	}
	var manifests []string
	if mf := sd.kid("ManifestFiles"); mf != nil {
		for _, m := range mf.kids {
			if m.attr("Name") != "" {
				manifests = append(manifests, m.attr("Name"))
			}
		}
	}
	if len(manifests) == 0 {
		return nil, fatalf("SystemData.xml lists no ManifestFile")
	}

	return manifests, nil
}

// checkMaps validates RootObjectMap.xml and the optional childless maps.
func (im *importer) checkMaps(paths map[string]string) error {
	// RootObjectMap.
	if p := paths["RootObjectMap.xml"]; p != "" {
		ro, err := readDocFile(p, rootObjectMapSchema)
		if err != nil {
			return err
		}
		for _, o := range ro.kids {
			if o.attr("Type") == "List" && (!sameID(o.attr("Id"), im.d.c.ListID) || !sameID(o.attr("ParentId"), im.d.c.WebID)) {
				return fatalf("RootObjectMap.xml: the List root object must have Id %s and ParentId %s (got %s, %s)", im.d.c.ListID, im.d.c.WebID, o.attr("Id"), o.attr("ParentId"))
			}
		}
	}

	// Optional childless maps.
	for _, o := range []struct {
		name string
		sd   *schemaDoc
	}{{"LookupListMap.xml", lookupListMapSchema}, {"Requirements.xml", requirementsSchema}, {"ViewFormsList.xml", viewFormsListSchema}} {
		p := paths[o.name]
		if p == "" {
			im.warn("invalid", "", "", o.name+" is missing from the metadata container")
			continue
		}
		if o.name == "LookupListMap.xml" {
			if n, err := readDocFile(p, &schemaDoc{file: o.name, root: "LookupListMap", ns: "", elems: map[string]*elemSpec{"LookupListMap": lax(true)}}); err == nil && n != nil {
				im.warn("invalid", "", "", "LookupListMap.xml uses the undocumented un-namespaced <LookupListMap> root")
				continue
			}
		}
		if _, err := readDocFile(p, o.sd); err != nil {
			return err
		}
	}

	return nil
}

// loadUsers reads UserGroup.xml; a user declared twice is fatal.
func (im *importer) loadUsers(path string) error {
	// Users.
	ug, err := readDocFile(path, userGroupSchema)
	if err != nil {
		return err
	}
	im.users = map[string]*pkgUser{}
	logins := map[string]bool{}
	if us := ug.kid("Users"); us != nil {
		for _, u := range us.kids {
			pu := &pkgUser{id: strings.TrimSpace(u.attr("Id")), name: u.attr("Name"), login: u.attr("Login"), email: u.attr("Email"),
				systemID: u.attr("SystemId"), deleted: isTrue(u.attr("IsDeleted"))}
			if im.users[pu.id] != nil {
				return fatalf("UserGroup.xml: duplicate user Id %s (each user must be declared once)", pu.id)
			}
			if l := strings.ToLower(pu.login); l != "" {
				if logins[l] {
					return fatalf("UserGroup.xml: duplicate user Login '%s' (each user must be declared once)", pu.login)
				}
				logins[l] = true
			}
			im.users[pu.id] = pu
		}
	}

	return nil
}

func (im *importer) eachObject(path, name string, fn func(*node) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = streamObjects(f, name, fn)
	var se *schemaError
	if errors.As(err, &se) {
		return fatalf("Manifest validation failed: %s", se)
	}
	return err
}

var childFor = map[string]string{
	"SPFile": "File", "SPFolder": "Folder", "SPListItem": "ListItem", "SPDocumentLibrary": "DocumentLibrary",
	"SPList": "List", "SPContentType": "ContentType", "DeploymentUserX": "UserX", "DeploymentGroupX": "GroupX",
	"DeploymentRoles": "Roles", "DeploymentRoleX": "RoleX", "DeploymentRoleAssignments": "RoleAssignments",
	"DeploymentRoleAssignmentX": "RoleAssignmentX",
}

// check is pass 1 for one SPObject: child/ObjectType agreement and the
// fatal id checks of §9.4 step 5.
func (im *importer) check(n *node) error {
	c := im.d.c
	ot := n.attr("ObjectType")
	var child *node
	if len(n.kids) == 1 {
		child = n.kids[0]
	}
	if want, ok := childFor[ot]; ok && child != nil && child.name.Local != want {
		return fatalf("Manifest validation failed: %s", manifestSchema.failAt(child, "SPObject with ObjectType '%s' has child element '%s'; want '%s'", ot, child.name.Local, want))
	}
	webFail := func(el *node, attr string) error {
		return fatalf("%s(%d,%d): %s %s='%s' does not match the container's web id %s", "Manifest", el.line, el.col, el.name.Local, attr, el.attr(attr), c.WebID)
	}
	listFail := func(el *node, attr string) error {
		return fatalf("%s(%d,%d): %s %s='%s' does not match the container's list id %s", "Manifest", el.line, el.col, el.name.Local, attr, el.attr(attr), c.ListID)
	}
	if v := n.attr("ParentWebId"); v != "" && !sameID(v, c.WebID) {
		return webFail(n, "ParentWebId")
	}
	if ot == "SPListItem" && n.attr("ParentId") != "" && !sameID(n.attr("ParentId"), c.ListID) {
		return listFail(n, "ParentId")
	}
	im.expectedObjects++
	if child == nil {
		return nil
	}
	if v := child.attr("ParentWebId"); v != "" && !sameID(v, c.WebID) {
		return webFail(child, "ParentWebId")
	}
	for _, a := range []string{"ListId", "ParentListId", "ContainingDocumentLibrary"} {
		if v := child.attr(a); v != "" && !sameID(v, c.ListID) {
			return listFail(child, a)
		}
	}
	id := normID(firstNonEmpty(child.attr("Id"), n.attr("Id")))
	switch child.name.Local {
	case "List", "DocumentLibrary":
		// Describing the library is optional for SPE; if present it must be
		// the container's library.
		if !sameID(id, c.ListID) {
			return listFail(child, "Id")
		}
	case "File":
		im.pkgItems[id] = "file"
		im.fileParent[id] = normID(firstNonEmpty(child.attr("ParentId"), n.attr("ParentId")))
		im.fileInt[id], _ = strconv.Atoi(child.attr("ListItemIntId"))
		im.expectedBytes += sizeAttr(child)
		if vs := child.kid("Versions"); vs != nil {
			for _, v := range vs.kids {
				im.expectedBytes += sizeAttr(v)
			}
		}
	case "Folder":
		im.pkgItems[id] = "folder"
		im.fileParent[id] = normID(firstNonEmpty(child.attr("ParentFolderId"), n.attr("ParentId")))
		im.fileInt[id], _ = strconv.Atoi(child.attr("ListItemIntId"))
	}
	return nil
}

func sizeAttr(n *node) int64 {
	v, _ := strconv.ParseInt(n.attr("FileSize"), 10, 64)
	return v
}

// apply is pass 2 for one SPObject.
func (im *importer) apply(ctx context.Context, n *node) error {
	var child *node
	if len(n.kids) == 1 {
		child = n.kids[0]
	}
	id := n.attr("Id")
	objType, objURL := "", im.objectURL(n.attr("Url"))
	errsBefore := im.errors
	if child != nil {
		objType = map[string]string{"Folder": "folder", "File": "file", "ListItem": "listItem"}[child.name.Local]
		id = firstNonEmpty(child.attr("Id"), id)
		objURL = im.objectURL(firstNonEmpty(child.attr("Url"), child.attr("FileUrl"), n.attr("Url")))
		if objType != "" {
			im.checkWebURL(objType, id, objURL, n, child)
		}
		switch child.name.Local {
		case "Folder":
			im.applyFolder(n, child)
		case "File":
			if err := im.applyFile(ctx, n, child); err != nil {
				return err
			}
		case "ListItem":
			im.applyListItem(n, child)
		}
	}
	if im.errors == errsBefore {
		im.logLine("Information", firstNonEmpty(objType, n.attr("ObjectType")), id, objURL, "Imported")
	}
	im.processed(id)
	return nil
}
