{{/*
A CronJob running one extension subcommand of the same image.
Arguments: (list $root $name $job $args $env)
*/}}
{{- define "odg.cronjob" -}}
{{- $root := index . 0 }}{{- $name := index . 1 }}{{- $job := index . 2 }}{{- $args := index . 3 }}{{- $env := index . 4 }}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ include "odg.fullname" $root }}-{{ $name }}
  labels:
    {{- include "odg.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $name }}
spec:
  schedule: {{ $job.schedule | quote }}
  # A run still going when the next is due: skip the next, never pile up.
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 120
  successfulJobsHistoryLimit: {{ $root.Values.extensions.successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ $root.Values.extensions.failedJobsHistoryLimit }}
  jobTemplate:
    spec:
      backoffLimit: {{ $root.Values.extensions.backoffLimit }}
      activeDeadlineSeconds: {{ $job.activeDeadlineSeconds }}
      template:
        metadata:
          labels:
            app.kubernetes.io/name: {{ include "odg.name" $root }}-{{ $name }}
            app.kubernetes.io/instance: {{ $root.Release.Name }}
            app.kubernetes.io/component: {{ $name }}
        spec:
          restartPolicy: Never
          serviceAccountName: {{ include "odg.serviceAccountName" $root }}
          automountServiceAccountToken: false
          {{- with $root.Values.imagePullSecrets }}
          imagePullSecrets:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- include "odg.podSecurityContext" $root | nindent 12 }}
          containers:
            - name: {{ $name }}
              image: {{ include "odg.image" $root | quote }}
              imagePullPolicy: {{ $root.Values.image.pullPolicy }}
              args:
                {{- toYaml $args | nindent 16 }}
              env:
                - name: ODG_LOG
                  value: {{ $root.Values.logLevel | quote }}
                - name: ODG_LOG_FORMAT
                  value: {{ $root.Values.logFormat | quote }}
                {{- with $env }}
                {{- . | trim | nindent 16 }}
                {{- end }}
              resources:
                {{- toYaml $job.resources | nindent 16 }}
              securityContext:
                {{- include "odg.containerSecurityContext" $root | nindent 16 }}
              volumeMounts:
                - name: config
                  mountPath: /etc/odg
                  readOnly: true
          volumes:
            - name: config
              configMap:
                name: {{ include "odg.fullname" $root }}
          {{- with $root.Values.nodeSelector }}
          nodeSelector:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $root.Values.tolerations }}
          tolerations:
            {{- toYaml . | nindent 12 }}
          {{- end }}
{{- end }}
