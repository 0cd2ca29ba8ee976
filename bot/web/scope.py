"""Which community a web request is about.

Staff and unit pages serve the signed-in user's community, whatever the URL says:
a user of one community has no way to name another's data. Public pages and the
webhook take the community from the path (``/public/<id>``, ``/wechat/<id>``), and
the default community when the path has none.
"""

from __future__ import annotations

from aiohttp import web

from bot import keys
from bot.tenants import Tenant
from catalog.model import Catalog
from storage.repositories.users import SignedIn


def tenant_of(request: web.Request, user: SignedIn) -> Tenant:
    tenant = request.app[keys.TENANTS].get(user.community_id)
    if tenant is None:  # a community this deployment no longer serves
        raise web.HTTPForbidden(text="您所在的社区不在本系统服务范围内，请联系管理员。")
    return tenant


def catalog_of(request: web.Request, user: SignedIn) -> Catalog:
    """The live catalog of the user's community."""
    return tenant_of(request, user).catalog.current


def named_tenant(request: web.Request) -> Tenant:
    """The community in the path's ``{community}`` part, the default without one;
    404 for a community not served here."""
    tenants = request.app[keys.TENANTS]
    community_id = request.match_info.get("community")
    if community_id is None:
        return tenants.default
    tenant = tenants.get(community_id)
    if tenant is None:
        raise web.HTTPNotFound(text="没有这个社区。")
    return tenant
