"""What the bot says, in one place: short, warm, plain Chinese for elderly residents."""

from __future__ import annotations


def welcome(community: str) -> str:
    return (
        f"您好，欢迎关注{community}！我是社区的服务小助手。\n"
        "有什么需要，直接发文字或语音告诉我就行，比如：\n"
        "“家里水管漏水了”\n“想给老人量量血压”\n"
        "发“帮助”可以看我能做什么。"
    )


def help_text(community: str) -> str:
    return (
        f"我是{community}的服务小助手，您可以：\n"
        "1. 直接说需要什么，文字、语音都行，比如“想请医生上门看看”；\n"
        "2. 我会告诉您哪个共建单位能帮忙；\n"
        "3. 社区没有的服务，我们会记下来，想办法安排。\n"
        "有不清楚的，随时发“帮助”。"
    )


VOICE_NOT_HEARD = "抱歉，这条语音我没听清。请您再说一遍，或者打字告诉我。"
IMAGE_RECEIVED = "收到您的图片了。如果是要反映问题，请再用一句话说说是什么情况、在哪里。"
LOCATION_RECEIVED = "收到您的位置了。请再用一句话说说需要什么帮助。"
LINK_RECEIVED = "收到您分享的内容了。需要办事的话，请直接告诉我您需要什么。"
NOT_UNDERSTOOD_KIND = "这类消息我暂时看不懂。请发文字或语音告诉我您需要什么。"
