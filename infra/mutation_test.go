package infra_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/spemigrate/spemigrate/handlers"
)

// TestCrossCheckCatchesOneSidedChanges runs the cross-check over modified
// copies of the deployment (and of the code's setting list): each change
// made on one side only must be reported, naming what disagrees.
func TestCrossCheckCatchesOneSidedChanges(t *testing.T) {
	base := loadInputs(t)
	if p := crossCheck(base); len(p) > 0 {
		t.Fatalf("the unmodified tree already fails: %v", p)
	}
	edit := func(file, old, new string) func(*inputs) {
		return func(in *inputs) {
			if !strings.Contains(in.files[file], old) {
				t.Fatalf("%s has no %q to change: update this test", file, old)
			}
			in.files[file] = strings.Replace(in.files[file], old, new, 1)
		}
	}
	for _, c := range []struct {
		name   string
		change func(*inputs)
		want   []string
	}{
		{"setting renamed in the Bicep only",
			edit("infra/resources.bicep", "'SPEMIGRATE_GRAPH_CLIENT_ID'", "'SPEMIGRATE_GRAPH_CLIENTID'"),
			[]string{"reads SPEMIGRATE_GRAPH_CLIENT_ID", "sets SPEMIGRATE_GRAPH_CLIENTID"}},
		{"setting renamed in the code only",
			func(in *inputs) {
				in.settings = slices.Clone(in.settings)
				for i, s := range in.settings {
					if s.Name == "SPEMIGRATE_STATE_KEY" {
						in.settings[i] = handlers.Setting{Name: "SPEMIGRATE_SEAL_KEY", Deployed: true}
					}
				}
			},
			[]string{"reads SPEMIGRATE_SEAL_KEY", "sets SPEMIGRATE_STATE_KEY"}},
		{"function.json setting not deployed",
			edit("infra/resources.bicep", "'SPEMIGRATE_DRAIN_SCHEDULE'", "'SPEMIGRATE_DRAIN_CRON'"),
			[]string{"%SPEMIGRATE_DRAIN_SCHEDULE%"}},
		{"Service Bus __credential missing",
			edit("infra/resources.bicep", "{ name: 'ServiceBusConnection__credential', value: 'managedidentity' }\n", ""),
			[]string{"ServiceBusConnection__credential must be 'managedidentity'"}},
		{"storage __clientId missing",
			edit("infra/resources.bicep", "{ name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }\n", ""),
			[]string{"AzureWebJobsStorage__clientId", "AzureWebJobsStorage__credential without its __clientId"}},
		{"a connection string in app settings",
			edit("infra/resources.bicep", "{ name: 'SPEMIGRATE_GRAPH_CREDENTIAL', value: 'managedIdentity' }", "{ name: 'ServiceBusConnection', value: 'Endpoint=sb://x/;SharedAccessKey=abc' }"),
			[]string{"ServiceBusConnection, which Flex", "looks like it holds a secret"}},
		{"queue renamed in the Bicep",
			edit("infra/resources.bicep", "name: 'stage-batch'", "name: 'stagebatch'"),
			[]string{"queues: Bicep has [poll provision stagebatch submit]"}},
		{"queue lock differs from the code's",
			edit("infra/resources.bicep", "{ name: 'poll', lockDuration: 'PT5M'", "{ name: 'poll', lockDuration: 'PT1M'"),
			[]string{"queue poll: Bicep lockDuration PT1M"}},
		{"duplicate detection off",
			edit("infra/resources.bicep", "requiresDuplicateDetection: true", "requiresDuplicateDetection: false"),
			[]string{"requiresDuplicateDetection: true"}},
		{"Table role missing",
			edit("infra/resources.bicep", "var storageRoles = [ roles.storageBlobDataOwner, roles.storageTableDataContributor ]", "var storageRoles = [ roles.storageBlobDataOwner ]"),
			[]string{"lacks Microsoft.Storage/storageAccounts " + roleTableDataContrib, "aztables"}},
		{"extra role",
			edit("infra/resources.bicep", "var serviceBusRoles = [ roles.serviceBusDataReceiver, roles.serviceBusDataSender ]", "var serviceBusRoles = [ roles.serviceBusDataReceiver, roles.serviceBusDataSender, roles.storageBlobDataContributor ]"),
			[]string{"holds Microsoft.ServiceBus/namespaces " + "ba92f5b4", "least privilege"}},
		{"source reader role wrong",
			edit("infra/modules/source-reader.bicep", "var blobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'", "var blobDataReader = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'"),
			[]string{"lacks source:Microsoft.Storage/storageAccounts " + roleBlobDataReader}},
		{"unused param",
			edit("infra/main.bicep", "param graphPermissionCheck string = 'warn'", "param graphPermissionCheck string = 'warn'\nparam leftover int = 1"),
			[]string{"param leftover is declared but never used", "leftover is not in infra/main.parameters.json"}},
		{"module param not declared",
			edit("infra/main.bicep", "    token: token\n", "    token: token\n    tokenn: token\n"),
			[]string{"passes tokenn"}},
		{"module output renamed",
			edit("infra/resources.bicep", "output identityPrincipalId string", "output identityObjectId string"),
			[]string{"app.outputs.identityPrincipalId"}},
		{"unterminated string",
			edit("infra/resources.bicep", "name: 'id-${token}'", "name: 'id-${token}"),
			[]string{"string not closed"}},
		{"package written elsewhere than azd deploys",
			edit("azure.yaml", "dist: build/functionapp.zip", "dist: build/app.zip"),
			[]string{"not what make package writes", "prepackage hook must write"}},
		{"azd service renamed",
			edit("azure.yaml", "  functionapp:", "  api:"),
			[]string{"azd-service-name"}},
		{"lock renewal below the timeout",
			edit("host.json", `"maxAutoLockRenewalDuration": "00:15:00"`, `"maxAutoLockRenewalDuration": "00:05:00"`),
			[]string{"maxAutoLockRenewalDuration \"00:05:00\" must be at least functionTimeout \"00:10:00\""}},
		{"table renamed in the Bicep",
			edit("infra/resources.bicep", "'InFlight'", "'Inflight'"),
			[]string{"tables: Bicep creates"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := base
			in.files = maps.Clone(base.files)
			c.change(&in)
			problems := crossCheck(in)
			all := strings.Join(problems, "\n")
			t.Logf("problems:\n%s", all)
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("want a problem containing %q; got:\n%s", w, all)
				}
			}
		})
	}
}
