// Everything inside the environment's resource group: one user-assigned
// identity that every connection uses, the storage account (host storage,
// deployment container, state tables), the Service Bus namespace with the
// four step queues, Key Vault holding the state key, monitoring, the
// identity's role assignments, and the Flex Consumption Function App that
// runs the custom handler. No app setting holds a secret.

param location string
param tags object
@description('Suffix that makes the global names unique (uniqueString of subscription, environment, region).')
param token string
@secure()
param stateKey string
param maximumInstanceCount int
param instanceMemoryMB int
param serviceBusSku string
param graphPermissionCheck string
@description('Deploying principal to give data-plane roles to; empty: none.')
param deployerPrincipalId string
param deployerPrincipalType string

var appName = 'func-${token}'
// Deployment package container, created before the site (Flex requires it).
var deployContainerName = 'app-package-${take(appName, 32)}-${take(token, 7)}'

// Tables the code uses: shared/state's, plus handlers/schedules'. The app
// creates them itself too (idempotently); creating them here means a fresh
// environment has them before the first start.
var tableNames = [ 'Migrations', 'Batches', 'InFlight', 'Events', 'Items', 'Results', 'Claims', 'Targets', 'Imports', 'Schedules' ]

// The step queues (shared/queue.DefaultQueues, handlers/*/function.json).
// Lock, delivery count, TTL and dead-lettering match the local emulator's
// infra/local/servicebus/queues.json, which the tests run against; the drain
// timer reports "after 10 delivery attempts". Duplicate detection is what
// makes a re-run step's resend (same MessageId) a no-op; the window covers
// a redelivery after a full function timeout. Duplicate detection and
// partitioning cannot be changed on an existing queue.
var queues = [
  { name: 'provision', lockDuration: 'PT5M', maxDeliveryCount: 10 }
  { name: 'stage-batch', lockDuration: 'PT5M', maxDeliveryCount: 10 }
  { name: 'submit', lockDuration: 'PT5M', maxDeliveryCount: 10 }
  { name: 'poll', lockDuration: 'PT5M', maxDeliveryCount: 10 }
]
var queueDefaultMessageTimeToLive = 'P14D'
var queueDuplicateDetectionWindow = 'PT1H'

// Built-in role definition IDs.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

// ---- identity ----

// User-assigned, so its client ID (registered outside Azure: Graph app
// role, SharePoint Embedded container type, source storage) survives a
// re-created app.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${token}'
  location: location
  tags: tags
}

// ---- storage: host storage, deployment package, state tables ----

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${token}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deployContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deployContainerName
  properties: { publicAccess: 'None' }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource stateTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for t in tableNames: {
  parent: tableService
  name: t
}]

// Host storage and the deployment container (blobs), state (tables).
var storageRoles = [ roles.storageBlobDataOwner, roles.storageTableDataContributor ]

resource storageRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for r in storageRoles: {
  name: guid(storage.id, identity.id, r)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', r)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}]

// ---- Service Bus ----

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: 'sb-${token}'
  location: location
  tags: tags
  sku: serviceBusSku == 'Premium' ? { name: 'Premium', tier: 'Premium', capacity: 1 } : { name: 'Standard', tier: 'Standard' }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource stepQueues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [for q in queues: {
  parent: serviceBus
  name: q.name
  properties: {
    lockDuration: q.lockDuration
    maxDeliveryCount: q.maxDeliveryCount
    defaultMessageTimeToLive: queueDefaultMessageTimeToLive
    deadLetteringOnMessageExpiration: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: queueDuplicateDetectionWindow
    enablePartitioning: false
    requiresSession: false
    maxSizeInMegabytes: 1024
    enableBatchedOperations: true
  }
}]

// Receiver: the host's triggers and the drain timer's dead-letter reads;
// Sender: the handler's azservicebus sender (scheduled step messages).
var serviceBusRoles = [ roles.serviceBusDataReceiver, roles.serviceBusDataSender ]

resource serviceBusRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for r in serviceBusRoles: {
  name: guid(serviceBus.id, identity.id, r)
  scope: serviceBus
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', r)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}]

// ---- Key Vault: the state key ----

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-${token}'
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

resource stateKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'spemigrate-state-key'
  properties: {
    value: stateKey
    contentType: 'base64 of 32 bytes (SPEMIGRATE_STATE_KEY)'
  }
}

resource vaultRoleAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---- monitoring ----

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${token}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
    features: { disableLocalAuth: true }
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${token}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

// Local auth is off, so the host sends telemetry with the identity's token.
resource insightsRoleAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---- the deploying principal (development environments only) ----

var deployerStorageRoles = empty(deployerPrincipalId) ? [] : [ roles.storageBlobDataContributor, roles.storageTableDataContributor ]
var deployerServiceBusRoles = empty(deployerPrincipalId) ? [] : [ roles.serviceBusDataSender, roles.serviceBusDataReceiver ]

resource deployerStorageRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for r in deployerStorageRoles: {
  name: guid(storage.id, deployerPrincipalId, r)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', r)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}]

resource deployerServiceBusRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for r in deployerServiceBusRoles: {
  name: guid(serviceBus.id, deployerPrincipalId, r)
  scope: serviceBus
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', r)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}]

// ---- the Function App ----

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

var serviceBusFqdn = '${serviceBus.name}.servicebus.windows.net'

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': 'functionapp' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with this identity (there is no
    // system-assigned one).
    keyVaultReferenceIdentity: identity.id
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deployContainer.name}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: { name: 'custom', version: '1.0' }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      // The whole set, every deployment: ARM replaces the collection.
      // Flex sets the worker runtime and extension version itself, so
      // FUNCTIONS_WORKER_RUNTIME and friends must not appear here.
      appSettings: [
        // Host storage over the identity; the handler reads the account
        // name and client ID for its state tables too.
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }
        // Every Service Bus binding's connection (function.json
        // "connection": "ServiceBusConnection"); without __credential the
        // host ignores __clientId and looks for a system-assigned identity.
        { name: 'ServiceBusConnection__fullyQualifiedNamespace', value: serviceBusFqdn }
        { name: 'ServiceBusConnection__credential', value: 'managedidentity' }
        { name: 'ServiceBusConnection__clientId', value: identity.properties.clientId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'Authorization=AAD;ClientId=${identity.properties.clientId}' }
        { name: 'SPEMIGRATE_STATE_KEY', value: '@Microsoft.KeyVault(SecretUri=${stateKeySecret.properties.secretUri})' }
        { name: 'SPEMIGRATE_GRAPH_CREDENTIAL', value: 'managedIdentity' }
        { name: 'SPEMIGRATE_GRAPH_CLIENT_ID', value: identity.properties.clientId }
        { name: 'SPEMIGRATE_GRAPH_PERMISSION_CHECK', value: graphPermissionCheck }
        // NCRONTAB, UTC (WEBSITE_TIME_ZONE is not for Flex).
        { name: 'SPEMIGRATE_DRAIN_SCHEDULE', value: '0 */1 * * * *' }
      ]
    }
  }
  // The host's first start needs its permissions and the tables.
  dependsOn: [
    storageRoleAssignments
    serviceBusRoleAssignments
    vaultRoleAssignment
    insightsRoleAssignment
    stateTables
    stepQueues
  ]
}

output appName string = site.name
output defaultHostName string = site.properties.defaultHostName
output identityClientId string = identity.properties.clientId
output identityPrincipalId string = identity.properties.principalId
output serviceBusFqdn string = serviceBusFqdn
output storageName string = storage.name
output keyVaultName string = vault.name
