"""``/api/v1/offices/<slug>/…``: office-scoped, read-only so far.

Membership is checked once per request (``OfficeMemberApi.initial``); a non-member gets the same 404 as a
missing office, exactly like the HTML views.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from constituents.models import Constituent
from messages.filters import ConversationFilter
from messages.models import Tag, TriageQueue
from messages.selectors.inbox import clamp_page_size, inbox_conversations, inbox_lookups, inbox_page
from offices.selectors import membership_for


class OfficeMemberApi(APIView):
    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication and IsAuthenticated first
        membership = membership_for(user=request.user, slug=kwargs["office_slug"])
        if membership is None:
            raise NotFound("No such office.")
        self.office = membership.office
        self.membership = membership


class ConversationListApi(OfficeMemberApi):
    """Conversations, newest activity first, filtered by ``messages.filters.ConversationFilter``.

    Query parameters are the inbox's (status, assignee, queue, tag, channel, district, opted_out, since,
    until, q), plus ``size`` (1 to 200) and ``after`` (the ``next_cursor`` of the previous page).
    """

    # Any, not Conversation: it serializes a page (many=True), which the stubs type as one instance.
    class OutputSerializer(serializers.Serializer[Any]):
        class ConstituentSerializer(serializers.Serializer[Constituent]):
            id = serializers.IntegerField()
            name = serializers.CharField(source="full_name")
            phone = serializers.CharField()
            in_district = serializers.BooleanField(allow_null=True)
            is_opted_out = serializers.BooleanField()

        class NamedSerializer(serializers.Serializer[Tag | TriageQueue]):
            id = serializers.IntegerField()
            name = serializers.CharField()

        class UserSerializer(serializers.Serializer[AbstractBaseUser]):
            id = serializers.IntegerField()
            username = serializers.CharField()

        id = serializers.IntegerField()
        status = serializers.CharField()
        priority = serializers.IntegerField()
        constituent = ConstituentSerializer()
        assignee = UserSerializer(allow_null=True)
        queue = NamedSerializer(allow_null=True)
        tags = NamedSerializer(many=True, source="tag_list")
        last_activity_at = serializers.DateTimeField()
        last_message_preview = serializers.CharField()
        last_message_channel = serializers.CharField()
        is_unread = serializers.BooleanField()
        snoozed_until = serializers.DateTimeField(allow_null=True)

    def get(self, request: Request, office_slug: str) -> Response:
        office = self.office
        lookups = inbox_lookups(office=office)
        filterset = ConversationFilter(
            request.query_params,
            inbox_conversations(office=office),
            office=office,
            user=request.user,
            lookups=lookups,
        )
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        size = clamp_page_size(request.query_params.get("size"))
        page = inbox_page(
            queryset=filterset.page_queryset,
            cursor=request.query_params.get("after"),
            size=size,
            search=filterset.search,
        )
        next_url = None
        if page.next_cursor:
            params = {**filterset.params, "size": str(size), "after": page.next_cursor}
            next_url = request.build_absolute_uri(f"{request.path}?{urlencode(params)}")
        return Response(
            {
                "results": self.OutputSerializer(page.conversations, many=True).data,
                "next_cursor": page.next_cursor,
                "next": next_url,
            }
        )
