"""HTTP interface of the case domain: serializers, filters, views, urls."""
