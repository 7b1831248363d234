from django.contrib import admin

from common.admin import RecordAdmin
from constituents.models import ConsentEvent, Constituent
from offices.admin import OfficeScopedAdmin


@admin.register(Constituent)
class ConstituentAdmin(OfficeScopedAdmin):
    list_display = ["display_name", "phone", "office", "zip_code", "in_district", "sms_consent"]
    list_filter = ["sms_consent", "in_district"]
    search_fields = ["phone", "first_name", "last_name", "email"]
    readonly_fields = [
        "sms_consent",
        "carrier_city",
        "carrier_state",
        "carrier_zip",
        "created_at",
        "updated_at",
    ]


@admin.register(ConsentEvent)
class ConsentEventAdmin(RecordAdmin, OfficeScopedAdmin):
    list_display = ["constituent", "previous", "new", "source", "keyword", "created_at"]
    list_filter = ["source", "new"]
    raw_id_fields = ["constituent"]
