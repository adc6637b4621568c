from django.contrib import admin

from devices.models import AuthFailure, Credential, Device, TelemetryBatch


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "key_id", "reseller", "customer", "last_seen_at", "revoked_at"]
    list_filter = ["kind"]
    search_fields = ["name", "key_id"]
    # The encrypted secrets are never shown, not even as ciphertext.
    exclude = ["secret_encrypted", "previous_secret_encrypted", "communities_encrypted"]
    readonly_fields = ["key_id", "last_seen_at", "last_seen_ip", "created_at", "rotated_at"]


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["serial", "model", "reseller", "customer", "site", "created_at"]
    search_fields = ["serial", "model"]
    raw_id_fields = ["customer", "site"]


@admin.register(TelemetryBatch)
class TelemetryBatchAdmin(admin.ModelAdmin):
    list_display = ["batch_id", "credential", "received_at", "snapshot_count"]
    exclude = ["body"]
    raw_id_fields = ["credential", "customer"]


@admin.register(AuthFailure)
class AuthFailureAdmin(admin.ModelAdmin):
    list_display = ["credential", "reason", "ip", "created_at"]
    raw_id_fields = ["credential"]
