package handlers

// Setting is one app setting the Functions app reads, either in Go code
// (LoadConfig) or through a %NAME% token in a function.json.
type Setting struct {
	Name string
	// Deployed says the Azure deployment (infra/) sets it. Settings that are
	// not deployed are alternatives (connection strings, client secrets) or
	// local-only (the emulator's token and certificate); the deployment
	// relies on identity and defaults instead.
	Deployed bool
}

// Settings lists every app setting LoadConfig reads and every setting a
// function.json resolves. A test fails when LoadConfig reads one that is
// not here, and infra's cross-check fails when a deployed one is missing
// from the Bicep, so a rename cannot happen on one side only.
var Settings = []Setting{
	{Name: "SPEMIGRATE_STATE_KEY", Deployed: true},
	{Name: "SPEMIGRATE_TABLE_PREFIX"},

	// State storage: AzureWebJobsStorage's identity settings, as the host
	// reads them, or SPEMIGRATE_STORAGE for a separate account.
	{Name: "AzureWebJobsStorage"},
	{Name: "AzureWebJobsStorage__accountName", Deployed: true},
	{Name: "AzureWebJobsStorage__clientId", Deployed: true},
	{Name: "AzureWebJobsStorage__tableServiceUri"},
	{Name: "SPEMIGRATE_STORAGE"},
	{Name: "SPEMIGRATE_STORAGE__accountName"},
	{Name: "SPEMIGRATE_STORAGE__clientId"},
	{Name: "SPEMIGRATE_STORAGE__tableServiceUri"},

	{Name: ServiceBusConnectionName},
	{Name: ServiceBusConnectionName + "__fullyQualifiedNamespace", Deployed: true},
	{Name: ServiceBusConnectionName + "__clientId", Deployed: true},

	{Name: "SPEMIGRATE_GRAPH_URL"},
	{Name: "SPEMIGRATE_GRAPH_API_VERSION"},
	{Name: "SPEMIGRATE_GRAPH_CREDENTIAL", Deployed: true},
	{Name: "SPEMIGRATE_GRAPH_TENANT_ID"},
	{Name: "SPEMIGRATE_GRAPH_CLIENT_ID", Deployed: true},
	{Name: "SPEMIGRATE_GRAPH_CLIENT_SECRET"},
	{Name: "SPEMIGRATE_GRAPH_CERTIFICATE_PATH"},
	{Name: "SPEMIGRATE_GRAPH_CERTIFICATE_PASSWORD"},
	{Name: "SPEMIGRATE_GRAPH_TOKEN"},
	{Name: "SPEMIGRATE_GRAPH_CA_FILE"},
	{Name: "SPEMIGRATE_GRAPH_PERMISSION_CHECK", Deployed: true},
	{Name: "SPEMIGRATE_GRAPH_CLOUD"},
	{Name: "SPEMIGRATE_USER_AGENT_COMPANY"},

	{Name: "SPEMIGRATE_POLL_INTERVAL"},
	{Name: "SPEMIGRATE_PAGE_SIZE"},
	{Name: "SPEMIGRATE_MAX_ATTEMPTS"},
	{Name: "SPEMIGRATE_MAX_JOBS_PER_CONTAINER"},
	{Name: "SPEMIGRATE_MAX_VERSIONS"},
	{Name: "SPEMIGRATE_STEP_DEADLINE"},
	{Name: "SPEMIGRATE_IMPORT_LOGS"},
	{Name: "SPEMIGRATE_IMPORT_LOG_WAIT"},
	{Name: "SPEMIGRATE_INVALID_PACKAGE_ERRORS"},
	{Name: "SPEMIGRATE_INT_ID_BASE"},
	{Name: "SPEMIGRATE_FIRST_INT_ID"},
	{Name: "SPEMIGRATE_SUBMIT_LEASE"},
	{Name: "SPEMIGRATE_STUCK_AFTER"},
	{Name: "SPEMIGRATE_POLL_GRACE"},

	// What requests may name (docs/security.md). Unset is the strict
	// choice (no local folders, only *.blob.core.windows.net, no connection
	// setting), which is what the deployment relies on.
	{Name: "SPEMIGRATE_LOCAL_SOURCE_ROOTS"},
	{Name: "SPEMIGRATE_BLOB_ENDPOINT_SUFFIXES"},
	{Name: "SPEMIGRATE_ALLOWED_BLOB_HOSTS"},
	{Name: "SPEMIGRATE_ALLOWED_CONTAINERS"},
	{Name: "SPEMIGRATE_ALLOWED_CONNECTION_SETTINGS"},

	// Resolved by the host in drain/function.json, not by Go code.
	{Name: "SPEMIGRATE_DRAIN_SCHEDULE", Deployed: true},
}
