{{/*
Names. The chart name, shortened or replaced by nameOverride; object names are at most 63 characters.
*/}}
{{- define "csspa.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of object names: fullnameOverride, else the release name when it already contains the chart name, else
"<release>-<chart>".
*/}}
{{- define "csspa.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The ServiceAccount the DaemonSets run as; the established chart's fixed name, so RBAC and policies written for it apply.
*/}}
{{- define "csspa.serviceAccountName" -}}
csi-secrets-store-provider-azure
{{- end -}}

{{/*
Labels on every object, besides "app": the selector label, which each object sets. Both DaemonSets select
app: <chart name>, the reference chart's selector: selectors are immutable, so any other value would make
"helm upgrade" over a reference install fail. The DaemonSets tell their pods apart by owner reference (and their
node selectors never overlap), so the shared selector is harmless.
*/}}
{{- define "csspa.labels" -}}
app.kubernetes.io/name: {{ include "csspa.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name (.Chart.Version | replace "+" "_") | quote }}
{{- end -}}

{{/*
The image of one OS: (dict "root" $ "os" .Values.linux). An empty tag means the chart's appVersion.
*/}}
{{- define "csspa.image" -}}
{{- $tag := default .root.Chart.AppVersion .os.image.tag -}}
{{- printf "%s:%s" .os.image.repository $tag -}}
{{- end -}}

{{/*
The metrics port from metricsAddr, which may be written "8898" or ":8898".
*/}}
{{- define "csspa.metricsPort" -}}
{{- .Values.metricsAddr | toString | trimPrefix ":" -}}
{{- end -}}

{{/*
The provider's flags, shared by both DaemonSets: (dict "root" $ "os" .Values.linux "endpoint" "unix:///provider/azure.sock").
Every setting is passed explicitly, so turning a default-on setting off (constructPEMChain: false) takes effect.
*/}}
{{- define "csspa.args" -}}
- {{ printf "--endpoint=%s" .endpoint | quote }}
- {{ printf "--construct-pem-chain=%t" (.root.Values.constructPEMChain | default false) | quote }}
- {{ printf "--write-cert-and-key-in-separate-files=%t" (.root.Values.writeCertAndKeyInSeparateFiles | default false) | quote }}
- {{ printf "--log-format-json=%t" (.root.Values.logFormatJSON | default false) | quote }}
- {{ printf "-v=%d" (.root.Values.logVerbosity | int) | quote }}
- {{ printf "--healthz-port=%d" (.os.healthzPort | int) | quote }}
- {{ printf "--healthz-path=%s" .os.healthzPath | quote }}
- {{ printf "--healthz-timeout=%s" .os.healthzTimeout | quote }}
- "--metrics-backend=Prometheus"
- {{ printf "--prometheus-port=%s" (include "csspa.metricsPort" .root) | quote }}
{{- if .os.customUserAgent }}
- {{ printf "--custom-user-agent=%s" .os.customUserAgent | quote }}
{{- end }}
{{- if .os.healthzAddress }}
- {{ printf "--healthz-address=%s" .os.healthzAddress | quote }}
{{- end }}
{{- if .root.Values.prometheusAddress }}
- {{ printf "--prometheus-address=%s" .root.Values.prometheusAddress | quote }}
{{- end }}
{{- if .os.cloudEnvFileDir }}
- {{ printf "--cloud-env-file-dir=%s" .os.cloudEnvFileDir | quote }}
{{- end }}
{{- with .root.Values.identityBinding }}
{{- if .tokenProxyURL }}
- {{ printf "--token-proxy-url=%s" .tokenProxyURL | quote }}
{{- end }}
{{- if .sniName }}
- {{ printf "--sni-name=%s" .sniName | quote }}
{{- end }}
{{- end }}
{{- with .root.Values.load }}
{{- if .maxFetchesPerMount }}
- {{ printf "--max-fetches-per-mount=%d" (.maxFetchesPerMount | int) | quote }}
{{- end }}
{{- if .maxRequestsPerVault }}
- {{ printf "--max-requests-per-vault=%d" (.maxRequestsPerVault | int) | quote }}
{{- end }}
{{- if not (kindIs "invalid" .credentialCacheSize) }}
- {{ printf "--credential-cache-size=%d" (.credentialCacheSize | int) | quote }}
{{- end }}
{{- if .maxRequestsPerSecondPerVault }}
- {{ printf "--max-requests-per-second-per-vault=%d" (.maxRequestsPerSecondPerVault | int) | quote }}
{{- end }}
{{- end }}
{{- with .root.Values.keyVaultCache }}
{{- if .maxTTL }}
- {{ printf "--keyvault-cache-max-ttl=%s" .maxTTL | quote }}
{{- if .maxEntries }}
- {{ printf "--keyvault-cache-max-entries=%d" (.maxEntries | int) | quote }}
{{- end }}
{{- if .maxBytes }}
- {{ printf "--keyvault-cache-max-bytes=%d" (.maxBytes | int64) | quote }}
{{- end }}
{{- if .allowFirstMounts }}
- "--keyvault-cache-first-mounts=true"
{{- end }}
{{- if .staleGrace }}
- {{ printf "--keyvault-cache-stale-grace=%s" .staleGrace | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- with .root.Values.kubernetesApi }}
{{- if .rotationFailureEvents }}
- "--rotation-failure-events=true"
{{- end }}
{{- if .workloadIdentityFromServiceAccount }}
- "--workload-identity-from-service-account=true"
{{- end }}
{{- with .nodeIdentityPolicy }}
{{- if and .policy (ne .policy "allow") }}
- {{ printf "--node-identity-policy=%s" .policy | quote }}
{{- if .allowedNamespaceLabel }}
- {{ printf "--node-identity-allowed-namespace-label=%s" .allowedNamespaceLabel | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- range .os.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
The Kubernetes API rules the enabled kubernetesApi features need, one per line; empty when none is on (the default).
*/}}
{{- define "csspa.kubeApiRules" -}}
{{- with .Values.kubernetesApi }}
{{- if .rotationFailureEvents }}
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
{{- if .workloadIdentityFromServiceAccount }}
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get"]
{{- end }}
{{- if and .nodeIdentityPolicy (eq (.nodeIdentityPolicy.policy | default "allow") "deny") .nodeIdentityPolicy.allowedNamespaceLabel }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"]
{{- end }}
{{- if .checkAllClasses }}
- apiGroups: ["secrets-store.csi.x-k8s.io"]
  resources: ["secretproviderclasses"]
  verbs: ["list"]
{{- end }}
{{- end }}
{{- end -}}

{{/* "true" when the provider calls the Kubernetes API, so its pods need their service account token. */}}
{{- define "csspa.needsKubeApi" -}}
{{- if include "csspa.kubeApiRules" . | trim }}true{{ else }}false{{ end }}
{{- end -}}

{{/*
Values of the reference chart this chart cannot honour fail the install with the reason, instead of being dropped.
(Unknown and mistyped keys are refused by values.schema.json.)
*/}}
{{- define "csspa.unsupported" -}}
{{- if .Values.enableArcExtension -}}
{{- fail "enableArcExtension: this chart does not install the Azure Arc extension's monitoring sidecars, identity and proxy secret; on Arc-enabled clusters install the provider as the Arc extension (az k8s-extension create --extension-type Microsoft.AzureKeyVaultSecretsProvider), or set enableArcExtension=false and configure HTTPS_PROXY and monitoring yourself" -}}
{{- end -}}
{{- end -}}

{{/*
The cluster's CA at the path a service account token volume would use, without the token: the identity binding token
proxy's server name is derived from the API server certificate, verified against this CA, and the proxy's certificate
is checked against it. The provider calls no Kubernetes API, so it gets no token. kube-root-ca.crt is published in
every namespace by Kubernetes (1.21+).
*/}}
{{- define "csspa.clusterCAVolume" -}}
{{- if eq (include "csspa.needsKubeApi" .) "false" }}
- name: cluster-ca
  projected:
    sources:
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
{{- end }}
{{- end -}}
{{- define "csspa.clusterCAMount" -}}
{{- /* With the API features on, the automounted service account volume brings ca.crt to the same path. */ -}}
{{- if eq (include "csspa.needsKubeApi" .) "false" }}
- name: cluster-ca
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- end }}
{{- end -}}
