"""The only readers of conversation data for views and APIs. Every function takes ``office=``, but for
``provider.provider_sid_office_ids``: the webhook signature check asks it which office a SID belongs to,
before any tenant is chosen."""
