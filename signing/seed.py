"""Default texts for the demo and tests: the three consent texts and two agreement templates.
Production loads the organisation's approved texts as new versions in the admin."""

from __future__ import annotations

from signing.models import AgreementTemplate, ConsentKind, ConsentText, TemplateKind

CONSENTS = {
    ConsentKind.ECERT_SERVICE: (
        "电子认证服务协议",
        "一、电子认证服务机构为您签发用于本次签约的数字证书，证书仅用于本协议的电子签名。\n"
        "二、您的私钥仅在您完成人脸识别和短信验证后使用，并在签名完成后销毁。\n"
        "三、依据《中华人民共和国电子签名法》，可靠的电子签名与手写签名或者盖章具有同等的法律效力。",
    ),
    ConsentKind.PRIVACY: (
        "个人信息保护政策",
        "一、我们收集您的姓名、身份证号码、手机号码，用于核验身份和办理签约。\n"
        "二、我们记录签约过程中的操作时间、设备信息和网络地址，作为签约证据保存。\n"
        "三、未经您同意，我们不会向第三方提供您的个人信息，法律法规另有规定的除外。",
    ),
    ConsentKind.BIOMETRIC: (
        "个人生物识别信息保护规则",
        "一、人脸识别由认证服务机构完成，本系统不保存您的人脸图像，仅保存识别结果编号和比对分数。\n"
        "二、人脸信息仅用于核验签约人是否为主申请人本人。\n"
        "三、首次人脸识别需允许浏览器使用摄像头。",
    ),
}

TEMPLATES = {
    TemplateKind.RENT_SUBSIDY: (
        "租金补贴协议",
        "租金补贴协议\n\n甲方：深圳市福田区住房保障机构（演示）\n乙方：{{ name }}（身份证号码：{{ id_number_masked }}）\n\n"
        "第一条 乙方为本区公共租赁住房在册轮候家庭（排位号 {{ rank }}，家庭人数 {{ household_size }} 人），"
        "经资格审核，符合租金补贴条件。\n"
        "第二条 甲方按月向乙方发放租金补贴，补贴标准按本区现行规定执行。\n"
        "第三条 乙方应如实申报家庭收入、财产及住房情况，情况变化的应在三十日内告知甲方。\n"
        "第四条 乙方有弄虚作假等情形的，甲方有权停止发放补贴并追回已发放的款项。\n"
        "第五条 本协议签约期限为 {{ window_starts_at }} 至 {{ window_ends_at }}，逾期未签订的，本协议作废。\n"
        "第六条 本协议经乙方电子签名、甲方审核盖章后生效。",
    ),
    TemplateKind.LEASE: (
        "公共租赁住房租赁合同",
        "公共租赁住房租赁合同\n\n出租人：深圳市住房保障机构（演示）\n承租人：{{ name }}（身份证号码：{{ id_number_masked }}）\n\n"
        "第一条 出租人将 {{ unit_label }}（户型 {{ layout }}，建筑面积 {{ area }} 平方米）出租给承租人居住使用。\n"
        "第二条 月租金 {{ monthly_rent }} 元，押金 {{ deposit }} 元，租金通过银行托收方式按月缴纳。\n"
        "第三条 租赁期限 {{ lease_years }} 年，自合同盖章生效之日起计算。\n"
        "第四条 承租人不得转租、转借、擅自调换或改变房屋用途。\n"
        "第五条 本合同经承租人电子签名、出租人审核盖章后生效。",
    ),
}


def texts_seed() -> None:
    """Create version 1 of each consent text and template if missing (idempotent)."""
    for kind, (title, body) in CONSENTS.items():
        ConsentText.objects.get_or_create(
            kind=kind, version=1, defaults={"title": title, "body": body}
        )
    for kind, (title, body) in TEMPLATES.items():
        AgreementTemplate.objects.get_or_create(
            kind=kind, version=1, defaults={"title": title, "body": body}
        )
