// Package infra holds spemigrate's Azure deployment: azure.yaml at the
// repository root points azd at main.bicep here (resources.bicep and
// modules/ beside it), scripts/ has the steps outside Bicep (the Graph
// permission and the SharePoint Embedded registration), and local/ the
// local stack. Its tests read the Bicep with a small structural reader,
// since no Bicep compiler is available offline, and cross-check it against
// the code: app settings, queues, identity settings and roles.
package infra
